"""The filters of Admin > Audit log."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _

from audit.labels import ACTIONS, ACTORS, OBJECT_TYPES
from core.listing import MAX_QUERY_LENGTH


class AuditFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=MAX_QUERY_LENGTH,
    )
    who = forms.ChoiceField(label=_("Who"), required=False)
    object_type = forms.ChoiceField(
        label=_("Object"),
        required=False,
        choices=[("", _("Any object")), *OBJECT_TYPES.items()],
    )
    object_id = forms.CharField(required=False, widget=forms.HiddenInput)
    action = forms.ChoiceField(
        label=_("Action"), required=False, choices=[("", _("Any action")), *ACTIONS.items()]
    )
    date_from = forms.DateField(
        label=_("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": _("Enter the start date as YYYY-MM-DD.")},
    )
    date_to = forms.DateField(
        label=_("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": _("Enter the end date as YYYY-MM-DD.")},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        usernames = User.objects.order_by("username").values_list("username", flat=True)
        self.fields["who"].choices = [
            ("", _("Anyone")),
            *ACTORS.items(),
            *((name, name) for name in usernames),
        ]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned
