"""``seed_demo`` sets the published demo passwords, so it runs only where DEBUG is on."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from accounts.roles import Role
from accounts.services import user_create_or_update
from segments.models import Profile, Segment

pytestmark = pytest.mark.django_db


def test_it_refuses_to_run_unless_debug_is_on(settings):
    settings.DEBUG = False
    admin = user_create_or_update(
        username="admin", role=Role.ADMINISTRATOR, password="a-real-admin-password-9"
    )[0]
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", "--profiles", "10")
    admin.refresh_from_db()
    assert admin.check_password("a-real-admin-password-9")
    assert not User.objects.filter(username__in=["contributor", "viewer"]).exists()
    assert not Profile.objects.exists() and not Segment.objects.exists()


def test_it_seeds_the_demo_when_debug_is_on(settings):
    settings.DEBUG = True
    call_command("seed_demo", "--profiles", "10", stdout=None)
    assert User.objects.get(username="admin").check_password("demo-admin-relay")
    assert Profile.objects.count() == 10
