"""A connection being set up, between **Connect** and **Save**.

It lives in the user's session, not in the database, so an abandoned setup, a denied consent or a
failed code exchange leaves nothing behind. Secrets in it are already encrypted.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

SESSION_KEY = "connections_pending"
MAX_PENDING = 5
MAX_AGE_SECONDS = 2 * 60 * 60


def pending_start(session, data: dict[str, Any]) -> str:
    """Keep a new pending connection; returns its id."""
    pending = _fresh(session)
    pending_id = secrets.token_urlsafe(12)
    pending[pending_id] = {**data, "started": time.time()}
    for stale in sorted(pending, key=lambda key: pending[key]["started"])[:-MAX_PENDING]:
        del pending[stale]
    _store(session, pending)
    return pending_id


def pending_get(session, pending_id: str) -> dict[str, Any] | None:
    return _fresh(session).get(pending_id)


def pending_update(session, pending_id: str, **changes: Any) -> None:
    pending = _fresh(session)
    if pending_id in pending:
        pending[pending_id].update(changes)
        _store(session, pending)


def pending_discard(session, pending_id: str) -> None:
    pending = _fresh(session)
    pending.pop(pending_id, None)
    _store(session, pending)


def _fresh(session) -> dict[str, dict[str, Any]]:
    oldest = time.time() - MAX_AGE_SECONDS
    return {
        key: value
        for key, value in session.get(SESSION_KEY, {}).items()
        if value.get("started", 0) >= oldest
    }


def _store(session, pending: dict[str, dict[str, Any]]) -> None:
    session[SESSION_KEY] = pending
