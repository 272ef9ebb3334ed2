from __future__ import annotations

import time

import factory
from django.utils import timezone

from connections.models import Connection
from core import crypto

API_KEY = "ap-secret-key-7f3a9c1e5b"
ACCESS_TOKEN = "cm-access-token-SlAV32hkKG"
REFRESH_TOKEN = "cm-refresh-token-tGzv3JOkF0XG5Qx2TlKWIA"


def campaign_monitor_credentials(**overrides) -> dict:
    return {
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "expires_in": 1209600,
        "expires_at": time.time() + 1209600,
        **overrides,
    }


class ConnectionFactory(factory.django.DjangoModelFactory):
    """An Autopilot connection by default; ``ConnectionFactory(campaign_monitor=True)`` for the
    other type. ``credentials=`` replaces the stored secrets."""

    class Meta:
        model = Connection
        exclude = ["credentials"]

    class Params:
        campaign_monitor = factory.Trait(
            kind="campaign_monitor",
            credentials=factory.LazyFunction(campaign_monitor_credentials),
        )

    kind = "autopilot"
    display_name = factory.Sequence(lambda n: f"Account {n}")
    consent_given_at = factory.LazyFunction(timezone.now)
    credentials = factory.LazyFunction(lambda: {"api_key": API_KEY})
    encrypted_credentials = factory.LazyAttribute(lambda o: crypto.encrypt_json(o.credentials))
