from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import user_deactivate, user_reactivate
from accounts.tokens import LAST_USED_PRECISION, token_authenticate, token_create, token_revoke

pytestmark = pytest.mark.django_db


def test_a_token_authenticates_as_its_user(bob):
    token, raw = token_create(user=bob, name="pipeline")
    assert token_authenticate(raw).user == bob
    assert raw.startswith("ar_") and raw.startswith(token.prefix)


def test_only_the_digest_is_stored(bob):
    token, raw = token_create(user=bob, name="pipeline")
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert raw not in {str(value) for value in stored.values()}


def test_it_refuses_unknown_and_malformed_tokens(bob):
    token_create(user=bob, name="pipeline")
    assert token_authenticate("ar_not-a-token") is None
    assert token_authenticate("") is None
    assert token_authenticate("Bearer something") is None


def test_a_revoked_token_stops_at_once(bob):
    token, raw = token_create(user=bob, name="pipeline")
    token_revoke(token=token)
    assert token.is_revoked
    assert token_authenticate(raw) is None


def test_a_deactivated_users_tokens_stop_and_come_back_with_the_user(alice, bob):
    _token, raw = token_create(user=bob, name="pipeline")
    user_deactivate(user=bob)
    assert token_authenticate(raw) is None
    user_reactivate(user=bob)
    assert token_authenticate(raw).user == bob


def test_last_used_is_written_at_most_once_a_minute(bob, django_assert_num_queries):
    token, raw = token_create(user=bob, name="pipeline")
    token_authenticate(raw)
    first_use = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first_use is not None
    with django_assert_num_queries(1):
        token_authenticate(raw)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - LAST_USED_PRECISION)
    token_authenticate(raw)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first_use
