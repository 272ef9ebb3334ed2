"""Ortto's secret fields: the API key, and the region whose host serves the account."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from connections.types.forms import CredentialsForm


class OrttoCredentialsForm(CredentialsForm):
    api_key = forms.CharField(
        label=_("Ortto API key"),
        max_length=200,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "In Ortto, open Settings > Data sources > New data source > Custom API and copy "
            "its private API key."
        ),
        error_messages={"required": _("Enter the Ortto API key.")},
    )
    region = forms.ChoiceField(
        label=_("Region"),
        choices=[("global", _("Global")), ("au", _("Australia")), ("eu", _("Europe"))],
        initial="global",
        help_text=_("Where your Ortto account keeps its data, as chosen when it was created."),
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any):
        super().__init__(*args, editing=editing, **kwargs)
        if editing:
            self.fields["api_key"].label = _("New Ortto API key")
            self.fields["api_key"].help_text = _(
                "Leave empty to keep the stored key and region. A new key is checked with "
                "Ortto first."
            )

    def credentials(self) -> dict[str, Any]:
        key = self.cleaned_data.get("api_key") or ""
        return (
            {"api_key": key, "region": self.cleaned_data.get("region") or "global"} if key else {}
        )
