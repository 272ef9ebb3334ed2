"""The destination types: one line each. ``TYPES`` also gives ``Connection.kind`` its choices.

A new destination is a package under ``connections/types/<kind>/`` with a ``Backend`` subclass,
plus one line here. Its label is written once, on the backend class.
"""

from __future__ import annotations

from functools import cache

from django.utils.functional import Promise
from django.utils.module_loading import import_string

from connections.types.base import Backend

#: kind → the dotted path of its backend class.
TYPES: dict[str, str] = {
    "campaign_monitor": "connections.types.campaign_monitor.backend.CampaignMonitorBackend",
    "autopilot": "connections.types.autopilot.backend.AutopilotBackend",
    "mailchimp": "connections.types.mailchimp.backend.MailchimpBackend",
    "ortto": "connections.types.ortto.backend.OrttoBackend",
}


def choices() -> list[tuple[str, str | Promise]]:
    return [(kind, backend_class(kind).label) for kind in TYPES]


@cache
def backend_class(kind: str) -> type[Backend]:
    """The backend class of a kind; ``KeyError`` for a kind that is not registered."""
    return import_string(TYPES[kind])


def label(kind: str) -> str:
    return str(backend_class(kind).label) if kind in TYPES else kind
