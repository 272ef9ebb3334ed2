"""How deliveries are signed, and how a receiver checks them (the README shows the same).

Each request carries three headers:

- ``Webhook-Id``: the delivery's id, the same on every retry (receivers use it to ignore
  duplicates);
- ``Webhook-Timestamp``: when this attempt was made, in whole seconds since the Unix epoch;
- ``Webhook-Signature``: ``v1=`` and the hex HMAC-SHA256, keyed with the endpoint's secret
  (the whole ``whsec_...`` string, as UTF-8), of ``"{timestamp}.{body}"``, the body being the
  exact bytes received.

A receiver recomputes the signature, compares it in constant time and refuses timestamps far
from its clock (five minutes here), which stops replays of a captured request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, URL-safe, with a recognisable prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(*, secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Webhook-Id": message_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": f"{SIGNATURE_VERSION}={signature(secret, timestamp, body)}",
    }


def verify(
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``headers`` sign ``body`` with ``secret`` at a time within ``tolerance`` of now.

    ``headers`` is looked up case-insensitively. Several signatures separated by spaces are
    accepted (any one may match), so that a receiver's code keeps working if we ever sign with
    two secrets during a rotation.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        timestamp = int(lowered["webhook-timestamp"])
        given = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(
        hmac.compare_digest(f"{SIGNATURE_VERSION}={expected}", candidate) for candidate in given
    )
