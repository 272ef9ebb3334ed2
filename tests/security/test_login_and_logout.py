"""Logging in never sends the browser to another site; logging out takes a POST."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

OFF_SITE = [
    "//evil.example",
    "https://evil.example",
    "http://evil.example/segments/",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    " //evil.example",
]


@pytest.mark.parametrize("next_url", OFF_SITE)
def test_login_never_redirects_off_site(client, alice, next_url):
    response = client.post(
        "/accounts/login/?next=" + next_url, {"username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == "/segments/"


def test_login_follows_a_next_on_this_site(client, alice):
    response = client.post(
        "/accounts/login/?next=/exports/", {"username": "alice", "password": PASSWORD}
    )
    assert response["Location"] == "/exports/"


def test_logout_by_get_is_refused_and_keeps_the_session(as_alice):
    response = as_alice.get("/accounts/logout/")
    assert response.status_code == 405
    assert as_alice.get("/segments/").status_code == 200


def test_logout_by_post_ends_the_session(as_alice):
    response = as_alice.post("/accounts/logout/")
    assert response.status_code == 302
    assert as_alice.get("/segments/").status_code == 302
