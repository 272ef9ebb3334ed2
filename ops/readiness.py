"""What ``/readyz`` checks. Each check answers ok or a short reason: never a URL, a host
name or an exception message, which may carry credentials."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection

from config.celery_app import app as celery_app
from ops import heartbeat

#: Beat and a worker count as alive when seen this recently.
MAX_HEARTBEAT_AGE_SECONDS = 75.0
BROKER_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str = ""

    def as_json(self) -> dict:
        return {"ok": self.ok, **({"detail": self.detail} if self.detail else {})}


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return Check(False, f"unreachable ({type(error).__name__})")
    return Check(True)


def check_cache() -> Check:
    try:
        cache.set("ops:readyz", "1", timeout=30)
        if cache.get("ops:readyz") != "1":
            return Check(False, "a value written could not be read back")
    except Exception as error:
        return Check(False, f"unreachable ({type(error).__name__})")
    return Check(True)


def check_broker() -> Check:
    try:
        with celery_app.connection_for_read() as broker:
            broker.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as error:
        return Check(False, f"unreachable ({type(error).__name__})")
    return Check(True)


def check_seen(key: str) -> Check:
    try:
        age = heartbeat.seconds_since(key)
    except Exception as error:
        return Check(False, f"cache unreachable ({type(error).__name__})")
    if age is None:
        return Check(False, "never seen")
    if age > MAX_HEARTBEAT_AGE_SECONDS:
        return Check(False, f"last seen {age:.0f} seconds ago")
    return Check(True, f"seen {age:.0f} seconds ago")


def readiness() -> dict[str, Check]:
    return {
        "database": check_database(),
        "broker": check_broker(),
        "cache": check_cache(),
        "worker": check_seen(heartbeat.WORKER_KEY),
        "beat": check_seen(heartbeat.BEAT_KEY),
    }
