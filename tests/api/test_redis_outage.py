"""While Redis (the cache that counts the API's rate limit) cannot be reached, the API answers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.tokens import token_create

pytestmark = pytest.mark.django_db
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_requests_go_through_unthrottled_while_the_rate_limit_cannot_be_counted(
    bob, settings, caplog
):
    _token, raw = token_create(user=bob, name="pipeline")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": UNREACHABLE_REDIS,
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    settings.API_RATE_LIMIT = "1/minute"
    client = APIClient()

    answers = [
        client.get("/api/v1/segments/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code
        for _ in range(3)
    ]

    assert answers == [200, 200, 200]
    assert "requests go through unthrottled" in caplog.text
