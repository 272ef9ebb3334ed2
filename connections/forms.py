"""The fields every connection has; a type's secret fields come from its own ``forms.py``."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from connections import selectors
from connections.models import Connection


class ConnectionForm(forms.Form):
    """``kind`` (and ``connection`` when editing) make the display name unique per type."""

    def __init__(self, *args, kind: str = "", connection: Connection | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind or (connection.kind if connection else "")
        self.connection = connection

    def clean_display_name(self) -> str:
        name = self.cleaned_data["display_name"].strip()
        if selectors.connection_name_taken(
            kind=self.kind, name=name, other_than=self.connection.pk if self.connection else None
        ):
            raise forms.ValidationError(
                _("Another connection of this type is called “%(name)s”. Choose another name."),
                params={"name": name},
            )
        return name

    display_name = forms.CharField(
        label=_("Display name"),
        max_length=200,
        error_messages={
            "required": _("Enter a display name, for example “Newsletter account”."),
            "max_length": _("Keep the display name under %(limit_value)d characters."),
        },
    )
    who_can_use = forms.ChoiceField(
        label=_("Choose who can use this connection"),
        choices=Connection.Audience.choices,
        initial=Connection.Audience.ADMINISTRATORS,
        widget=forms.RadioSelect,
        help_text=_("Contributors see only its name and type, never its settings."),
    )


class ConnectionSetupForm(ConnectionForm):
    agree = forms.BooleanField(
        label=_("I agree"),
        error_messages={
            "required": _(
                "Select I agree to confirm the data privacy and compliance terms before you "
                "connect."
            )
        },
    )


class ConnectionFinishForm(forms.Form):
    add_me_as_export_user = forms.BooleanField(
        label=_("Add yourself as export user"),
        required=False,
        initial=True,
        help_text=_(
            "Export users are told, with the administrators, when this connection needs "
            "re-authentication. Who may choose it for an export is set under Choose who can use "
            "this connection."
        ),
    )


class ConnectionEditForm(ConnectionForm):
    i_am_export_user = forms.BooleanField(
        label=_("You are an export user of this connection"),
        required=False,
        help_text=_(
            "Export users are told, with the administrators, when this connection needs "
            "re-authentication. Who may choose it for an export is set under Choose who can use "
            "this connection."
        ),
    )
