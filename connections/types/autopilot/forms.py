"""Autopilot's secret field: the API key."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from connections.types.forms import CredentialsForm


class AutopilotCredentialsForm(CredentialsForm):
    api_key = forms.CharField(
        label=_("Autopilot API key"),
        max_length=200,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("In Autopilot, open Settings > Autopilot API and copy the key."),
        error_messages={"required": _("Enter the Autopilot API key.")},
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any):
        super().__init__(*args, editing=editing, **kwargs)
        if editing:
            self.fields["api_key"].label = _("New Autopilot API key")
            self.fields["api_key"].help_text = _(
                "Leave empty to keep the stored key. A new key is checked with Autopilot first."
            )

    def credentials(self) -> dict[str, Any]:
        key = self.cleaned_data.get("api_key") or ""
        return {"api_key": key} if key else {}
