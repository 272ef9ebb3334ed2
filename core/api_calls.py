"""Counts of API calls to each destination, and of the 429s among them, shared by every
process through the cache so that ``/metrics`` on any web process sees every worker's calls.

A call only adds to an in-process tally; the tally goes to the cache at most once a second
per process (a cache round trip per call would slow a run). A process that dies loses at
most its last second of counts."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from django.core.cache import cache

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
CALLS = "calls"
RATE_LIMITED = "rate_limited"
#: The label of calls made through a session that did not name its destination.
UNKNOWN_DESTINATION = "unknown"

_tally: Counter[tuple[str, str]] = Counter()
_lock = threading.Lock()
_last_flush = time.monotonic()


def cache_key(destination: str, kind: str) -> str:
    return f"ops:api:{kind}:{destination}"


def record(destination: str, status_code: int) -> None:
    """One response from ``destination`` (a connection type); never raises."""
    global _last_flush
    destination = destination or UNKNOWN_DESTINATION
    with _lock:
        _tally[(destination, CALLS)] += 1
        if status_code == 429:
            _tally[(destination, RATE_LIMITED)] += 1
        due = time.monotonic() - _last_flush >= FLUSH_SECONDS
        if due:
            _last_flush = time.monotonic()
    if due:
        flush()


def flush() -> None:
    """Add this process's tally to the shared counts (and empty it)."""
    with _lock:
        pending = dict(_tally)
        _tally.clear()
    for (destination, kind), count in pending.items():
        key = cache_key(destination, kind)
        try:
            cache.add(key, 0, timeout=None)
            cache.incr(key, count)
        except Exception:
            logger.warning("Could not record %s API %s for %s", count, kind, destination)


def totals(destinations: list[str]) -> dict[tuple[str, str], int]:
    """The shared counts of each destination: ``{(destination, CALLS|RATE_LIMITED): n}``."""
    keys = {
        cache_key(destination, kind): (destination, kind)
        for destination in destinations
        for kind in (CALLS, RATE_LIMITED)
    }
    found = cache.get_many(list(keys))
    return {keys[key]: int(found.get(key) or 0) for key in keys}
