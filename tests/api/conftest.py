from __future__ import annotations

import socket

import pytest
from rest_framework.test import APIClient

from accounts.tokens import token_create
from tests.fake_dns import FakeDNS


@pytest.fixture(autouse=True)
def no_outside_services(settings):
    """Nothing in the API tests may reach a real service: closed local ports."""
    settings.AUTOPILOT_API_URL = "http://127.0.0.1:9/v1"
    settings.CAMPAIGN_MONITOR_API_URL = "http://127.0.0.1:9/api/v3.3"


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> FakeDNS:
    """Webhook addresses are resolved: hooks.example.com is public, other names unknown."""
    fake = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Tokens get the ids of earlier test sessions' tokens: forget what those were counted."""
    from django.core.cache import cache

    client = cache._cache.get_client()
    for key in client.scan_iter(match="*api-throttle:*"):
        client.delete(key)


def client_for(user) -> APIClient:
    """An API client that sends a fresh token of ``user``."""
    client = APIClient()
    _token, raw = token_create(user=user, name="tests")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def api_alice(alice):
    return client_for(alice)


@pytest.fixture
def api_bob(bob):
    return client_for(bob)


@pytest.fixture
def api_charlie(charlie):
    return client_for(charlie)
