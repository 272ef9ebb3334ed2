"""The destination types: one line each. ``TYPES`` also gives ``Connection.kind`` its choices.

A new destination is a package under ``connections/types/<kind>/`` with a ``Backend`` subclass,
plus one line here.
"""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from connections.types.base import Backend

TYPES: dict[str, tuple[str, str]] = {
    "campaign_monitor": (
        _("Campaign Monitor"),
        "connections.types.campaign_monitor.backend.CampaignMonitorBackend",
    ),
    "autopilot": (_("Autopilot"), "connections.types.autopilot.backend.AutopilotBackend"),
    "mailchimp": (_("Mailchimp"), "connections.types.mailchimp.backend.MailchimpBackend"),
    "ortto": (_("Ortto"), "connections.types.ortto.backend.OrttoBackend"),
}


def choices() -> list[tuple[str, str]]:
    return [(kind, label) for kind, (label, _path) in TYPES.items()]


@cache
def backend_class(kind: str) -> type[Backend]:
    """The backend class of a kind; ``KeyError`` for a kind that is not registered."""
    return import_string(TYPES[kind][1])


def label(kind: str) -> str:
    return str(TYPES[kind][0]) if kind in TYPES else kind
