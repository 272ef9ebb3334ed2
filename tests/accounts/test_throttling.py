"""Login throttling: repeated failures for one username or from one address pause logging in."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def throttling(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3


def _log_in(client, username, password, address="10.0.0.1"):
    return client.post(
        reverse("accounts:login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_repeated_failures_for_one_username_lock_it_even_from_other_addresses(
    client, alice, caplog
):
    for attempt in range(2):
        assert _log_in(client, "alice", "wrong", f"10.0.0.{attempt}").status_code == 200
    with caplog.at_level(logging.WARNING, logger="accounts.throttling"):
        locked = _log_in(client, "alice", "wrong", "10.0.0.9")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert b"paused for 15 minutes" in locked.content
    assert "Login locked out after 3 failures: username='alice'" in caplog.text

    # The right password does not get through while the lock lasts, from a fresh address too.
    still = _log_in(client, "alice", PASSWORD, "10.0.0.20")
    assert still.status_code == 429
    assert "_auth_user_id" not in client.session


def test_repeated_failures_from_one_address_lock_it_for_every_username(client, alice, bob):
    for username in ("x", "y", "z"):
        _log_in(client, username, "wrong", "192.0.2.7")
    assert _log_in(client, "bob", PASSWORD, "192.0.2.7").status_code == 429
    assert _log_in(client, "bob", PASSWORD, "192.0.2.8").status_code == 302


def test_behind_a_proxy_each_client_is_counted_on_its_own(client, settings, alice, bob):
    settings.TRUSTED_PROXY_COUNT = 1
    for _attempt in range(3):
        client.post(
            reverse("accounts:login"),
            {"username": "mallory", "password": "wrong"},
            REMOTE_ADDR="10.0.0.254",
            HTTP_X_FORWARDED_FOR="203.0.113.66",
        )
    locked = client.post(
        reverse("accounts:login"),
        {"username": "bob", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.254",
        HTTP_X_FORWARDED_FOR="203.0.113.66",
    )
    assert locked.status_code == 429
    other = client.post(
        reverse("accounts:login"),
        {"username": "bob", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.254",
        HTTP_X_FORWARDED_FOR="198.51.100.3",
    )
    assert other.status_code == 302


def test_a_successful_login_before_the_limit_resets_the_count(client, alice):
    _log_in(client, "alice", "wrong")
    _log_in(client, "alice", "wrong")
    assert _log_in(client, "alice", PASSWORD).status_code == 302
    client.logout()
    _log_in(client, "alice", "wrong")
    _log_in(client, "alice", "wrong")
    assert _log_in(client, "alice", PASSWORD).status_code == 302


def test_the_lockout_message_is_translated(client, alice):
    for _attempt in range(3):
        response = _log_in(client, "alice", "wrong")
    response = client.post(
        reverse("accounts:login"),
        {"username": "alice", "password": "wrong"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert response.status_code == 429
    assert "Trop de connexions échouées" in response.content.decode()


def test_the_test_suite_runs_without_throttling(settings):
    """Elsewhere AXES_ENABLED is off, so tests that log in many times are not locked out."""
    from config.settings import test

    assert test.AXES_ENABLED is False
