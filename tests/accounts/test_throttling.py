"""Login throttling: repeated failures pause logging in, without letting one account lift
another's count or a stranger lock a user out of the address they log in from."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from axes.models import AccessLog
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def throttling(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_PER_USERNAME = 6
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 6


def _log_in(client, username, password, address="10.0.0.1"):
    response = client.post(
        reverse("accounts:login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )
    client.logout()
    return response


def test_failures_for_one_username_from_one_address_lock_that_pair(client, alice, caplog):
    for _attempt in range(2):
        assert _log_in(client, "alice", "wrong").status_code == 200
    with caplog.at_level(logging.WARNING, logger="accounts.throttling"):
        locked = _log_in(client, "alice", "wrong")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert b"paused for 15 minutes" in locked.content
    assert "Login locked out: username='alice' address=10.0.0.1" in caplog.text
    assert "3 failures for this username from this address" in caplog.text

    # The right password does not get through from that address while the lock lasts ...
    still = client.post(
        reverse("accounts:login"),
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
    )
    assert still.status_code == 429
    assert "_auth_user_id" not in client.session
    # ... but does from another one: the pair is locked, not the account.
    assert _log_in(client, "alice", PASSWORD, "10.0.0.2").status_code == 302


def test_a_good_login_as_yourself_does_not_clear_failures_against_another_account(
    client, alice, bob
):
    """Guessing alice's password between logins as bob still gets locked out."""
    for _round in range(2):
        _log_in(client, "alice", "wrong", "192.0.2.7")
        assert _log_in(client, "bob", PASSWORD, "192.0.2.7").status_code == 302
    assert _log_in(client, "alice", "wrong", "192.0.2.7").status_code == 429
    assert _log_in(client, "alice", PASSWORD, "192.0.2.7").status_code == 429


def test_a_stranger_cannot_lock_a_user_out_of_an_address_they_logged_in_from(client, alice):
    assert _log_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302
    # Far more failures than any limit, from many addresses and from one.
    for attempt in range(10):
        _log_in(client, "alice", "wrong", f"203.0.113.{attempt}")
    for _attempt in range(10):
        _log_in(client, "alice", "wrong", "198.51.100.1")
    for username in ("x", "y", "z"):
        _log_in(client, username, "wrong", "203.0.113.1")

    assert _log_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302


def test_many_failures_for_one_username_lock_it_at_addresses_it_has_not_logged_in_from(
    client, alice
):
    """A guesser spreading over many addresses gets LOGIN_FAILURE_LIMIT_PER_USERNAME tries."""
    assert _log_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302
    for attempt in range(5):
        assert _log_in(client, "alice", "wrong", f"203.0.113.{attempt}").status_code == 200
    assert _log_in(client, "alice", "wrong", "203.0.113.50").status_code == 429
    assert _log_in(client, "alice", PASSWORD, "198.51.100.3").status_code == 429
    assert _log_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302


def test_many_failures_from_one_address_lock_it_for_usernames_new_to_it(client, alice, bob):
    assert _log_in(client, "alice", PASSWORD, "192.0.2.7").status_code == 302
    for username in ("t", "u", "v", "w", "x", "y"):
        _log_in(client, username, "wrong", "192.0.2.7")
    assert _log_in(client, "bob", PASSWORD, "192.0.2.7").status_code == 429
    assert _log_in(client, "bob", PASSWORD, "192.0.2.8").status_code == 302
    assert _log_in(client, "alice", PASSWORD, "192.0.2.7").status_code == 302


def test_an_address_not_logged_in_from_lately_is_new_again(client, settings, alice):
    settings.LOGIN_KNOWN_ADDRESS_DAYS = 30
    assert _log_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302
    AccessLog.objects.filter(username="alice").update(
        attempt_time=timezone.now() - timedelta(days=31)
    )
    for attempt in range(6):
        _log_in(client, "alice", "wrong", f"203.0.113.{attempt}")
    assert _log_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 429


def test_a_login_forgets_that_users_addresses_older_than_the_window(client, settings, alice):
    settings.LOGIN_KNOWN_ADDRESS_DAYS = 30
    assert _log_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302
    AccessLog.objects.filter(username="alice").update(
        attempt_time=timezone.now() - timedelta(days=31)
    )
    assert _log_in(client, "alice", PASSWORD, "10.0.0.2").status_code == 302
    assert list(AccessLog.objects.values_list("ip_address", flat=True)) == ["10.0.0.2"]


def test_behind_a_proxy_each_client_is_counted_on_its_own(client, settings, alice, bob):
    settings.TRUSTED_PROXY_COUNT = 1
    for _attempt in range(3):
        client.post(
            reverse("accounts:login"),
            {"username": "bob", "password": "wrong"},
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
