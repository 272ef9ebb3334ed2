"""The base of each kind's settings form: the connection settings a source of the kind keeps,
and its password (never shown again: left empty, the stored one is kept)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _


class SettingsForm(forms.Form):
    #: The form's fields that are secrets (kept encrypted, never put back in the page).
    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, has_password: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if "password" in self.fields and has_password:
            self.fields["password"].help_text = _(
                "A password is stored. Leave this empty to keep it; type a new one to replace it."
            )

    def connection_settings(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name not in self.secret_fields and value not in (None, "")
        }

    def password(self) -> str | None:
        """The password typed in, or None to keep the stored one."""
        return self.cleaned_data.get("password") or None


class ServerSettingsForm(SettingsForm):
    """What a database server needs: where it is, which database, who signs in."""

    secret_fields = ("password",)
    host = forms.CharField(label=_("Host"), max_length=255)
    port = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535)
    database = forms.CharField(label=_("Database"), max_length=255)
    user = forms.CharField(label=_("User"), max_length=255)
    password = forms.CharField(
        label=_("Password"),
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
