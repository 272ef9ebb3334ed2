"""Mailchimp's secret field: an API key, for those who connect without OAuth."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from connections.types.forms import CredentialsForm


class MailchimpCredentialsForm(CredentialsForm):
    """Empty is fine: **Authenticate with Mailchimp** on the next page signs in by OAuth."""

    api_key = forms.CharField(
        label=_("Mailchimp API key (optional)"),
        max_length=200,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "Only for your own account: in Mailchimp, open Profile > Extras > API keys and copy "
            "a key (it ends in its data centre, like -us21). Leave empty to sign in with "
            "Mailchimp on the next page instead."
        ),
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any):
        super().__init__(*args, editing=editing, **kwargs)
        if editing:
            self.fields["api_key"].label = _("New Mailchimp API key")
            self.fields["api_key"].help_text = _(
                "Leave empty to keep the stored credentials. A new key is checked with "
                "Mailchimp first."
            )

    def credentials(self) -> dict[str, Any]:
        key = self.cleaned_data.get("api_key") or ""
        return {"api_key": key} if key else {}
