"""A rate limit per API token (per user for the browser session), counted in the cache
(Redis in production), answered with 429 and ``Retry-After``.

While the cache cannot be reached (Redis restarting), requests go through unthrottled rather
than fail: the API stays usable, and the outage is logged once a minute at most.

A fixed window: one counter per token and window, incremented once per request. DRF's own
throttle keeps every request's time in a list that is read and written whole on each request,
so its cost grows with the limit; a counter costs the same at any rate. The price is that a
caller may spend one window's allowance at its end and the next one's at the start.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken
from core.coordination import UNAVAILABLE

logger = logging.getLogger(__name__)
OUTAGE_LOG_SECONDS = 60.0
_last_outage_logged = 0.0


class TokenRateThrottle(SimpleRateThrottle):
    scope = "api"

    def get_rate(self) -> str:
        # Read on every request (not at import) so that the setting can change in tests.
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"address-{self.get_ident(request)}"
        return f"api-throttle:{ident}"

    def allow_request(self, request, view) -> bool:
        self.num_requests, self.duration = self.parse_rate(self.get_rate())
        now = time.time()
        window = int(now // self.duration)
        key = f"{self.get_cache_key(request, view)}:{window}"
        self.seconds_left = self.duration - now % self.duration
        try:
            return self._count(key) <= self.num_requests
        except UNAVAILABLE as error:
            _log_outage(error)
            return True

    def _count(self, key: str) -> int:
        """This window's requests, this one included."""
        if cache.add(key, 1, timeout=self.duration + 1):
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # the window's counter expired between the two calls
            cache.add(key, 1, timeout=self.duration + 1)
            return 1

    def wait(self) -> float:
        return self.seconds_left


def _log_outage(error: Exception) -> None:
    global _last_outage_logged
    if time.monotonic() - _last_outage_logged >= OUTAGE_LOG_SECONDS:
        _last_outage_logged = time.monotonic()
        logger.warning(
            "The API rate limit cannot be counted (%s): requests go through unthrottled",
            type(error).__name__,
        )
