"""Mailchimp's "10 simultaneous connections per account", shared by every worker.

Mailchimp answers the 11th simultaneous request of an account with 429 (mailchimp_api.md §8).
Each request takes one of ``limit`` slots first: with Redis, a sorted set of leases (one Lua
script, so two workers never take the last slot both); without Redis (the SQLite demo has one
worker), a semaphore in the process. A lease expires on its own after ``LEASE_SECONDS``, so a
worker that dies holding slots does not starve the others for longer than that.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings
from redis.commands.core import Script

from core import coordination

#: Longer than any request may take (Mailchimp ends requests after 120 s).
LEASE_SECONDS = 130.0
POLL_SECONDS = 0.02

# KEYS[1]: the account's leases; ARGV: limit, now, lease end, lease id. 1 when a slot was taken.
_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], 300)
  return 1
end
return 0
"""

_local_lock = threading.Lock()
_local_semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}


class ConnectionSlots:
    """At most ``limit`` requests at once per ``key`` (an account), across workers."""

    def __init__(self, key: str, limit: int):
        self.key = f"audience-relay:slots:{key}"
        self.limit = max(1, limit)
        self._redis: redis.Redis | None = None
        self._script: Script | None = None
        if settings.REDIS_URL:
            self._redis = coordination.client(settings.REDIS_URL)
            self._script = self._redis.register_script(_TAKE_SLOT)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot while the block runs; waits until one is free (and for Redis, should
        it be out of reach)."""
        shared, script = self._redis, self._script
        if shared is None or script is None:
            semaphore = self._local_semaphore()
            with semaphore:
                yield
            return
        lease = uuid.uuid4().hex
        while not coordination.waiting_out_outages(lambda: self._take(script, lease)):
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            # Should Redis be out of reach, the lease expires on its own (and a restarted
            # Redis has none).
            with contextlib.suppress(*coordination.UNAVAILABLE):
                shared.zrem(self.key, lease)

    def _take(self, script: Script, lease: str) -> bool:
        now = time.time()
        return bool(script(keys=[self.key], args=[self.limit, now, now + LEASE_SECONDS, lease]))

    def _local_semaphore(self) -> threading.BoundedSemaphore:
        with _local_lock:
            return _local_semaphores.setdefault(
                (self.key, self.limit), threading.BoundedSemaphore(self.limit)
            )
