"""The API tokens page: each user's own tokens, made (shown once) and revoked."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import ApiToken
from accounts.tokens import token_authenticate, token_create

pytestmark = pytest.mark.django_db
PAGE = reverse("accounts:tokens")


def test_a_viewer_creates_a_token_and_sees_it_once(as_charlie, charlie):
    page = as_charlie.post(PAGE, {"name": "nightly sync"}).content.decode()
    token = ApiToken.objects.get()
    raw = re.search(r'<textarea id="token"[^>]*>([^<]+)</textarea>', page).group(1)
    assert token_authenticate(raw).user == charlie
    again = as_charlie.get(PAGE).content.decode()
    assert raw not in again
    assert "nightly sync" in again and token.prefix in again


def test_the_page_that_shows_a_new_token_is_never_stored_by_a_cache(as_charlie):
    """Not by the browser's back button, nor by a proxy: the token is in this response only."""
    response = as_charlie.post(PAGE, {"name": "nightly sync"})
    assert '<textarea id="token"' in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_a_token_needs_a_name(as_charlie):
    page = as_charlie.post(PAGE, {"name": ""}).content.decode()
    assert "Give the token a name you will recognise." in page
    assert not ApiToken.objects.exists()


def test_the_page_lists_only_the_users_own_tokens(as_bob, alice):
    token_create(user=alice, name="alice's secret job")
    assert "alice&#x27;s secret job" not in as_bob.get(PAGE).content.decode()


def test_revoking_stops_the_token(as_bob, bob):
    token, raw = token_create(user=bob, name="old")
    response = as_bob.post(reverse("accounts:token_revoke", args=[token.pk]))
    assert response.status_code == 302
    assert token_authenticate(raw) is None
    assert "Revoked" in as_bob.get(PAGE).content.decode()


def test_nobody_revokes_someone_elses_token(as_bob, alice):
    token, raw = token_create(user=alice, name="hers")
    response = as_bob.post(reverse("accounts:token_revoke", args=[token.pk]))
    assert response.status_code == 404
    assert token_authenticate(raw) is not None


def test_the_navigation_links_to_the_page(as_charlie):
    assert f'href="{PAGE}"' in as_charlie.get(reverse("segments:list")).content.decode()


def test_a_new_token_is_shown_whole_with_a_copy_button(as_charlie):
    page = as_charlie.post(PAGE, {"name": "nightly sync"}).content.decode()
    raw = re.search(r'<textarea id="token"[^>]*>([^<]+)</textarea>', page).group(1)
    assert len(raw) > 30  # all of it, not cut off
    assert 'data-copy="#token"' in page
    assert "Copy it now: it is not shown again." in page
