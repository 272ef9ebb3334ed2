from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from webhooks.models import EVENTS


class EndpointForm(forms.Form):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        error_messages={"required": _("Give the URL that receives the events.")},
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=list(EVENTS.items()),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Pick at least one event to send.")},
    )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not url.startswith("https://") and not settings.WEBHOOKS_ALLOW_HTTP:
            raise forms.ValidationError(
                _("The URL must start with https://: events are sent only over HTTPS.")
            )
        return url
