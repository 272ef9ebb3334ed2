"""Admin > Users: list, add with an invitation, change role, deactivate, reset password."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.roles import Role, role_of
from accounts.services import user_create_or_update
from audit.models import AuditEntry

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://\S+/users/set-password/\S+/")


@pytest.fixture
def invite(django_capture_on_commit_callbacks):
    """Post Add user; the invitation is sent once the new user is committed."""

    def post(client, **fields):
        data = {"username": "dana", "email": "dana@example.com", "role": "contributor", **fields}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(reverse("users:add"), data)

    return post


def _link_in_last_mail() -> str:
    return LINK.search(mail.outbox[-1].body).group(0)


def test_the_list_shows_name_email_role_last_login_and_active(as_alice, bob, charlie):
    bob.first_name, bob.last_name, bob.email = "Bob", "Builder", "bob@example.com"
    bob.save()
    charlie.is_active = False
    charlie.save()
    response = as_alice.get(reverse("users:list"))
    html = response.content.decode()
    assert "Bob Builder" in html and "bob@example.com" in html
    assert "Contributor" in html and "Viewer" in html
    assert "Deactivated" in html
    assert "Never" in html  # bob never logged in; alice's session came from force_login


def test_the_navigation_shows_users_to_administrators_only(as_alice, client, bob):
    assert reverse("users:list") in as_alice.get(reverse("segments:list")).content.decode()
    client.force_login(bob)
    assert reverse("users:list") not in client.get(reverse("segments:list")).content.decode()


def test_adding_a_user_sends_a_one_time_link_that_sets_a_valid_password(as_alice, settings, invite):
    settings.SITE_URL = "http://testserver"
    response = invite(as_alice, first_name="Dana", last_name="Scully")
    assert response.status_code == 302
    dana = User.objects.get(username="dana")
    assert role_of(dana) == Role.CONTRIBUTOR
    assert not dana.has_usable_password()
    assert mail.outbox[-1].to == ["dana@example.com"]
    assert "72 hours" in mail.outbox[-1].body
    link = _link_in_last_mail()

    as_alice.logout()
    page = as_alice.get(link, follow=True)
    assert b"Choose your password" in page.content
    form_url = page.redirect_chain[-1][0]
    weak = as_alice.post(form_url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert b"This password is too common" in weak.content
    similar = as_alice.post(
        form_url, {"new_password1": "dana-scully", "new_password2": "dana-scully"}
    )
    assert b"too similar" in similar.content
    good = "lantern-orchid-7"
    done = as_alice.post(form_url, {"new_password1": good, "new_password2": good})
    assert done.status_code == 302 and done.url == reverse("accounts:login")
    assert as_alice.login(username="dana", password=good)
    set_by = AuditEntry.objects.get(action="user.password_set", object_id=str(dana.pk))
    assert set_by.actor_label == "dana" and set_by.after == {}

    as_alice.logout()
    again = as_alice.get(link, follow=True)
    assert b"expired or was already used" in again.content


def test_the_link_expires_after_72_hours(as_alice, settings, monkeypatch, invite):
    settings.SITE_URL = "http://testserver"
    invite(as_alice)
    link = _link_in_last_mail()
    from accounts.invitations import set_password_token

    now = set_password_token._now()
    monkeypatch.setattr(
        type(set_password_token), "_now", lambda self: now + timedelta(hours=72, minutes=1)
    )
    as_alice.logout()
    assert b"expired or was already used" in as_alice.get(link, follow=True).content


def test_a_django_password_reset_token_does_not_open_the_page(as_alice, alice, client):
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    url = reverse(
        "users:set_password",
        args=[
            urlsafe_base64_encode(force_bytes(alice.pk)),
            default_token_generator.make_token(alice),
        ],
    )
    client.logout()
    assert b"expired or was already used" in client.get(url, follow=True).content


def test_adding_refuses_a_taken_username_or_email(as_alice, bob, invite):
    bob.email = "bob@example.com"
    bob.save()
    response = invite(as_alice, username="BOB", email="Bob@Example.com")
    assert b"This username is taken" in response.content
    assert b"Another user already has this e-mail address" in response.content
    assert not mail.outbox


def test_changing_a_role(as_alice, bob):
    data = {"first_name": "Bob", "last_name": "", "email": "bob@example.com", "role": "viewer"}
    response = as_alice.post(reverse("users:edit", args=[bob.pk]), data)
    assert response.status_code == 302
    bob.refresh_from_db()
    assert role_of(bob) == Role.VIEWER and bob.email == "bob@example.com"


def test_the_last_administrator_cannot_demote_herself(as_alice, alice):
    data = {"first_name": "", "last_name": "", "email": "alice@example.com", "role": "viewer"}
    response = as_alice.post(reverse("users:edit", args=[alice.pk]), data)
    assert response.status_code == 200
    assert b"at least one active administrator" in response.content
    assert role_of(User.objects.get(pk=alice.pk)) == Role.ADMINISTRATOR


def test_deactivating_and_reactivating(as_alice, bob, client):
    as_alice.post(reverse("users:deactivate", args=[bob.pk]))
    bob.refresh_from_db()
    assert not bob.is_active
    as_alice.post(reverse("users:reactivate", args=[bob.pk]))
    bob.refresh_from_db()
    assert bob.is_active


def test_the_last_administrator_cannot_be_deactivated_from_the_page(as_alice, alice):
    response = as_alice.post(reverse("users:deactivate", args=[alice.pk]), follow=True)
    assert b"at least one active administrator" in response.content
    alice.refresh_from_db()
    assert alice.is_active


def test_a_deactivated_user_cannot_use_a_link(as_alice, bob, settings):
    settings.SITE_URL = "http://testserver"
    bob.email = "bob@example.com"
    bob.save()
    as_alice.post(reverse("users:reset_password", args=[bob.pk]))
    link = _link_in_last_mail()
    as_alice.post(reverse("users:deactivate", args=[bob.pk]))
    as_alice.logout()
    assert b"expired or was already used" in as_alice.get(link, follow=True).content


def test_reset_password_sends_a_link_and_keeps_the_old_password(as_alice, bob):
    bob.email = "bob@example.com"
    bob.save()
    response = as_alice.post(reverse("users:reset_password", args=[bob.pk]), follow=True)
    assert b"went to bob@example.com" in response.content
    assert mail.outbox[-1].to == ["bob@example.com"]
    assert "new password" in mail.outbox[-1].subject
    bob.refresh_from_db()
    assert bob.has_usable_password()


def test_reset_password_without_an_email_says_so(as_alice, bob):
    response = as_alice.post(reverse("users:reset_password", args=[bob.pk]), follow=True)
    assert b"has no e-mail address" in response.content
    assert not mail.outbox


def test_add_user_command_applies_every_password_validator(db):
    with pytest.raises(CommandError, match="too similar"):
        call_command("add_user", "contributor", "--role", "viewer", "--password", "contributor-1")
    with pytest.raises(CommandError, match="too common"):
        call_command("add_user", "erin", "--role", "viewer", "--password", "password123")
    assert not User.objects.filter(username__in=["contributor", "erin"]).exists()


def test_the_demo_passwords_pass_the_validators(db):
    from segments.management.commands.seed_demo import DEMO_USERS

    for username, role, password in DEMO_USERS:
        user_create_or_update(username=username, role=role, password=password)


def test_an_invited_user_who_never_chose_a_password_gets_the_invitation_again(
    as_alice, invite, settings
):
    settings.SITE_URL = "http://testserver"
    invite(as_alice)
    dana = User.objects.get(username="dana")
    assert b"Invited, no password yet" in as_alice.get(reverse("users:list")).content
    as_alice.post(reverse("users:reset_password", args=[dana.pk]))
    assert mail.outbox[-1].subject == "You are invited to Audience Relay"
    assert _link_in_last_mail()
