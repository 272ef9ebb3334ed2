from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from webhooks import addresses
from webhooks.events import EVENT_CHOICES
from webhooks.models import Endpoint


def plain_http_allowed() -> bool:
    return settings.DEBUG or settings.WEBHOOKS_ALLOW_HTTP


class EndpointForm(forms.ModelForm):
    """Add or edit an endpoint: where to send and which events. The secret is ours to make."""

    url = forms.URLField(
        label=_("URL"),
        max_length=2000,
        assume_scheme="https",
        help_text=_("Where Audience Relay sends each event, as an HTTPS POST request."),
        error_messages={
            "required": _("Enter the address that receives the events."),
            "invalid": _("Enter a full web address, such as https://example.com/hooks."),
        },
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event to send to this endpoint.")},
    )

    class Meta:
        model = Endpoint
        fields = ["url", "description", "events"]
        labels = {"description": _("Description")}
        help_texts = {
            "description": _("Optional: what receives these events, for whoever reads this later."),
        }

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise forms.ValidationError(
                _(
                    "Leave the user name and password out of the address: requests are signed "
                    "instead."
                )
            )
        if parts.scheme != "https" and not plain_http_allowed():
            raise forms.ValidationError(
                _(
                    "The address must start with https:// so that events travel encrypted. "
                    "Plain http:// is accepted only in development."
                )
            )
        try:
            addresses.deliverable_addresses(url)
        except addresses.AddressRefused as refused:
            raise forms.ValidationError(str(refused.message)) from refused
        return url
