"""Reads on users: Admin > Users, and who is told when something needs a person."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from accounts.roles import Role


def user_list() -> QuerySet[User]:
    """Every user, active ones first, by username; groups prefetched for ``role_of``."""
    return User.objects.prefetch_related("groups").order_by("-is_active", "username")


def alert_addresses(users: Iterable) -> list[str]:
    """The e-mail addresses of the active ``users`` given (None skipped) and of every active
    administrator, each once, in alphabetical order: who an alert goes to."""
    wanted = [user for user in users if user is not None and user.is_active and user.email]
    administrators = (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .filter(Q(is_superuser=True) | Q(groups__name=Role.ADMINISTRATOR.group_name))
        .distinct()
    )
    addresses: dict[str, str] = {}
    for user in [*wanted, *administrators]:
        addresses.setdefault(user.email.strip().lower(), user.email.strip())
    return sorted(addresses.values(), key=str.lower)


def administrator_names() -> list[str]:
    """The active administrators, by the name a colleague knows them by: whom to ask for what
    only an administrator may do."""
    administrators = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name=Role.ADMINISTRATOR.group_name))
        .distinct()
        .order_by("username")
    )
    return [user.get_full_name() or user.get_username() for user in administrators]
