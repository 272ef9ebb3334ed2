"""Encryption of connection secrets at rest: Fernet tokens under a MultiFernet.

``settings.FIELD_ENCRYPTION_KEY`` is a list of Fernet keys, newest first. The newest key encrypts;
every key in the list decrypts, so a key is rotated by putting a new one in front, re-encrypting
(``manage.py rotate_connection_keys``) and only then dropping the old one.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


def _fernet() -> MultiFernet:
    keys = settings.FIELD_ENCRYPTION_KEY
    if isinstance(keys, str):
        keys = [keys]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must hold at least one Fernet key.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes); generate one with Fernet.generate_key()."
        ) from error


def encrypt_json(data: dict[str, Any]) -> str:
    """Encrypt a JSON-serialisable mapping with the newest key; the result is ASCII text."""
    return _fernet().encrypt(json.dumps(data, separators=(",", ":")).encode()).decode("ascii")


def decrypt_json(token: str) -> dict[str, Any]:
    """Decrypt what ``encrypt_json`` made; an empty token means "no secrets stored"."""
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError) as error:
        raise DecryptionError(
            "A stored connection secret could not be decrypted: FIELD_ENCRYPTION_KEY no longer "
            "contains the key it was encrypted with."
        ) from error


def reencrypt(token: str) -> str:
    """Re-encrypt a token with the newest key (MultiFernet.rotate); empty stays empty."""
    if not token:
        return token
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as error:
        raise DecryptionError("A stored connection secret could not be decrypted.") from error
