from __future__ import annotations

import socket

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.tokens import token_create
from tests.api.openapi_conformance import Document
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


@pytest.fixture(scope="session")
def openapi_document(django_db_setup, django_db_blocker) -> Document:
    """The document as served (read once: no test changes it)."""
    with django_db_blocker.unblock():
        response = Client().get("/api/v1/openapi.json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return Document(response.json())


@pytest.fixture(autouse=True)
def answers_as_documented(monkeypatch, openapi_document):
    """Every answer an API test receives (through Django's or DRF's test client) is one the
    document allows: its status code, its content type and its body."""
    request = Client.request

    def checked_request(self, **environ):
        response = request(self, **environ)
        problems = openapi_document.problems(
            environ["REQUEST_METHOD"], environ["PATH_INFO"], response
        )
        assert not problems, "\n".join(problems)
        return response

    monkeypatch.setattr(Client, "request", checked_request)


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
