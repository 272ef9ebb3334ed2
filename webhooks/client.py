"""The one place webhooks leave through: a pooled session with a timeout, no redirects."""

from __future__ import annotations

import hashlib
import hmac

import requests
from django.conf import settings

SIGNATURE_HEADER = "X-Audience-Relay-Signature"
TIMESTAMP_HEADER = "X-Audience-Relay-Timestamp"
EVENT_HEADER = "X-Audience-Relay-Event"
DELIVERY_HEADER = "X-Audience-Relay-Delivery"

_session = requests.Session()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256, under the endpoint's secret, of ``timestamp.body``."""
    message = timestamp.encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    """Raises ``requests.RequestException`` when the receiver cannot be reached."""
    return _session.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        allow_redirects=False,
    )
