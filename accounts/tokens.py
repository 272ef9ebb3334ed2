"""Personal API tokens: created once, shown once, stored as a digest, revoked for good.

A token authenticates as its user, so the API applies exactly the checks the pages apply
(accounts/roles.py): nothing here knows about roles.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import ApiToken
from audit.actions import AuditAction

#: Every token starts with this, so that secret scanners and people can recognise one.
TOKEN_PREFIX = "ar_"  # noqa: S105 (a marker, not a secret)
#: ``last_used_at`` is written at most this often per token, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def _digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


@transaction.atomic
def token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; the raw token is returned here and never again."""
    raw_token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip(),
        prefix=raw_token[: len(TOKEN_PREFIX) + 6],
        digest=_digest(raw_token),
    )
    audit.record(AuditAction.API_TOKEN_CREATED, token)
    return token, raw_token


def token_revoke(*, token: ApiToken) -> None:
    """Revoke the token; it stops authenticating at once. Revoking twice changes nothing."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    audit.record(AuditAction.API_TOKEN_REVOKED, token, after={"revoked_at": token.revoked_at})


def token_authenticate(raw_token: str) -> ApiToken | None:
    """The live token for ``raw_token`` (its user attached), or None.

    None for an unknown or revoked token and for a token whose user was deactivated.
    """
    if not raw_token.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.live().select_related("user").filter(digest=_digest(raw_token)).first()
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def tokens_of(user: User):
    """The user's tokens, newest first, revoked ones included (the page shows when)."""
    return ApiToken.objects.filter(user=user)
