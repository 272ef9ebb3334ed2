from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from sources.kinds.forms import ServerSettingsForm
from sources.kinds.postgresql.kind import SSL_MODES, VERIFY_CA_NEEDS_A_FILE


class PostgreSQLSettingsForm(ServerSettingsForm):
    port = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535, initial=5432)
    sslmode = forms.ChoiceField(
        label=_("TLS"),
        choices=[(mode, mode) for mode in SSL_MODES],
        initial="prefer",
        help_text=_(
            "verify-full checks the server's certificate and name: use it on networks "
            "you do not control."
        ),
    )
    sslrootcert = forms.CharField(
        label=_("CA certificate file"),
        required=False,
        max_length=500,
        help_text=_(
            "Path on the server running Audience Relay, for verify-ca (required) and "
            "verify-full (without one, the system's trusted authorities)."
        ),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("sslmode") == "verify-ca" and not cleaned.get("sslrootcert"):
            self.add_error("sslrootcert", str(VERIFY_CA_NEEDS_A_FILE))
        return cleaned
