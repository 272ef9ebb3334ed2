"""Campaign Monitor has no secret fields: its credentials come from the OAuth redirect."""

from __future__ import annotations

from connections.types.forms import CredentialsForm


class CampaignMonitorCredentialsForm(CredentialsForm):
    """Empty on purpose: **Authenticate with Campaign Monitor** stores the tokens."""
