from __future__ import annotations

import socket

import pytest

from tests.fake_dns import FakeDNS
from webhooks import events, services

URL = "https://hooks.example.com/in"
ALL_EVENTS = [event for event, _label in events.EVENT_CHOICES]


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def endpoint_and_secret(db, alice):
    return services.endpoint_create(url=URL, description="Data team", events=ALL_EVENTS, user=alice)


@pytest.fixture
def endpoint(endpoint_and_secret):
    return endpoint_and_secret[0]


@pytest.fixture
def secret(endpoint_and_secret):
    return endpoint_and_secret[1]
