"""When Celery beat and a worker were last seen, kept in the cache shared by every process.

Beat publishes ``ops.tasks.heartbeat`` every ``HEARTBEAT_SECONDS``; publishing records beat
(``ops.signals``), and a worker running it records the worker. ``/readyz`` reads both."""

from __future__ import annotations

import time

from django.core.cache import cache

HEARTBEAT_SECONDS = 30.0
BEAT_KEY = "ops:heartbeat:beat"
WORKER_KEY = "ops:heartbeat:worker"
# Longer than the time a seen mark is needed for, so a missing key means "never seen".
_KEEP_SECONDS = 24 * 3600


def record(key: str) -> None:
    cache.set(key, time.time(), timeout=_KEEP_SECONDS)


def seconds_since(key: str) -> float | None:
    """Seconds since the mark under ``key`` was recorded, or ``None`` if it never was."""
    seen = cache.get(key)
    return None if seen is None else max(0.0, time.time() - float(seen))
