"""Redis as the store through which workers share a service's limits (the request rate, the
account's connection slots), and how its outages are waited out.

A lost Redis is a transient fault. Whoever needs it waits, with a capped backoff, until it
answers again, and sends nothing meanwhile: the service's limits hold when it comes back
(buckets and leases start empty then, which allows one second's burst, as after a quiet spell).
The time the outage began is kept for the process, so that a run's progress can say why it
waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis

logger = logging.getLogger(__name__)

#: What Redis raises while it restarts or cannot be reached (loading included).
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
#: A Redis that hangs fails a call after this long instead of blocking a run for ever.
SOCKET_TIMEOUT_SECONDS = 5.0
FIRST_PAUSE_SECONDS = 0.25
LONGEST_PAUSE_SECONDS = 5.0

T = TypeVar("T")

_lock = threading.Lock()
_outage_began: float | None = None


class Stopped(Exception):
    """The caller asked to stop while Redis was out of reach."""


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=SOCKET_TIMEOUT_SECONDS, socket_timeout=SOCKET_TIMEOUT_SECONDS
    )


def outage_seconds() -> float | None:
    """How long this process has been waiting for Redis, or None while it answers."""
    with _lock:
        return None if _outage_began is None else time.monotonic() - _outage_began


def waiting_out_outages(call: Callable[[], T], stopped: Callable[[], bool] = lambda: False) -> T:
    """``call()``, retried for as long as Redis cannot be reached; raise Stopped if ``stopped``
    turns true meanwhile."""
    attempt = 0
    while True:
        try:
            result = call()
        except UNAVAILABLE as error:
            attempt += 1
            _outage(began=True, error=error)
            pause = min(LONGEST_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2 ** min(attempt, 8))
            deadline = time.monotonic() + pause
            while time.monotonic() < deadline:
                if stopped():
                    raise Stopped from error
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            continue
        if attempt:
            _outage(began=False)
        return result


def _outage(*, began: bool, error: Exception | None = None) -> None:
    global _outage_began
    with _lock:
        if began and _outage_began is None:
            _outage_began = time.monotonic()
            logger.warning(
                "Redis cannot be reached (%s): sending waits until it answers again",
                type(error).__name__,
            )
        elif not began and _outage_began is not None:
            logger.warning(
                "Redis answers again after %.0f s: sending goes on",
                time.monotonic() - _outage_began,
            )
            _outage_began = None
