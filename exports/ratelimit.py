"""Request-rate limits shared by every worker that uses the same credentials.

With Redis, a token bucket lives in Redis (one atomic Lua script), so all workers and threads
that push through one connection share it. Without Redis (the SQLite demo) the bucket lives in
the process, which is what a single demo worker needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.conf import settings

from core import coordination

# KEYS[1]: bucket; ARGV: rate per second, capacity, now (seconds). Takes the next request slot,
# now or in the future (the bucket may go below zero: slots are reserved in order), and returns
# the seconds to wait for it, so that a waiting thread sleeps once instead of asking again.
_TAKE_REQUEST_SLOT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate) - 1
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], 60)
if tokens >= 0 then
  return '0'
end
return tostring(-tokens / rate)
"""


class RateLimiter:
    """Blocks ``acquire()`` so that at most ``rate`` requests per second start, shared by key."""

    def __init__(self, key: str, rate: float | None, capacity: float | None = None):
        """``capacity``: the burst allowed after a quiet spell; one second's worth by default,
        as the services' own token buckets allow."""
        self.key = f"audience-relay:rate:{key}"
        self.rate = rate
        self.capacity = capacity or max(1.0, rate or 1.0)
        self._lock = threading.Lock()
        self._local_tokens = self.capacity
        self._local_at = time.monotonic()
        self._script = None
        if rate and settings.REDIS_URL:
            client = coordination.client(settings.REDIS_URL)
            self._script = client.register_script(_TAKE_REQUEST_SLOT)

    def acquire(self, stopped: Callable[[], bool] = lambda: False) -> None:
        """Wait for this request's slot (unless ``stopped`` turns true meanwhile), and for
        Redis, should it be out of reach: nothing is sent without a slot."""
        if not self.rate:
            return
        try:
            wait = coordination.waiting_out_outages(self._take, stopped)
        except coordination.Stopped:
            return
        deadline = time.monotonic() + wait
        while not stopped():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.25))

    def _take(self) -> float:
        rate = self.rate
        if not rate:
            return 0.0
        if self._script is not None:
            return float(self._script(keys=[self.key], args=[rate, self.capacity, time.time()]))
        with self._lock:
            now = time.monotonic()
            self._local_tokens = (
                min(self.capacity, self._local_tokens + (now - self._local_at) * rate) - 1
            )
            self._local_at = now
            return max(0.0, -self._local_tokens / rate)
