from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from sources.kinds.forms import ServerSettingsForm
from sources.kinds.postgresql.kind import SSL_MODES


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
        help_text=_("Path on the server running Audience Relay, for verify-ca and verify-full."),
    )
