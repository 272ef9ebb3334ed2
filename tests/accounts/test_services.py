from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.roles import Role, role_of
from accounts.services import LastAdministrator, user_deactivate, user_set_role

pytestmark = pytest.mark.django_db


def test_the_last_administrator_cannot_be_demoted(alice):
    with pytest.raises(LastAdministrator):
        user_set_role(user=alice, role=Role.CONTRIBUTOR)
    assert role_of(alice) == Role.ADMINISTRATOR


def test_the_last_administrator_cannot_be_deactivated(alice):
    with pytest.raises(LastAdministrator):
        user_deactivate(user=alice)
    alice.refresh_from_db()
    assert alice.is_active


def test_an_administrator_can_be_demoted_when_another_remains(alice, bob):
    user_set_role(user=bob, role=Role.ADMINISTRATOR)
    user_set_role(user=alice, role=Role.VIEWER)
    assert role_of(alice) == Role.VIEWER


def test_an_inactive_administrator_does_not_count(alice, bob):
    user_set_role(user=bob, role=Role.ADMINISTRATOR)
    user_deactivate(user=bob)
    with pytest.raises(LastAdministrator):
        user_set_role(user=alice, role=Role.CONTRIBUTOR)


def test_a_deactivated_users_session_stops_on_the_next_request(alice, bob, as_bob):
    assert as_bob.get(reverse("segments:list")).status_code == 200
    user_deactivate(user=bob)
    response = as_bob.get(reverse("segments:list"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_add_user_refuses_to_demote_the_last_administrator(alice):
    with pytest.raises(CommandError, match="at least one active administrator"):
        call_command("add_user", "alice", "--role", "viewer")
