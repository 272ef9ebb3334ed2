"""Reads on users: Admin > Users, and who is told when something needs a person."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from accounts.roles import Role
from core.listing import Sorting, search_words

#: Admin > Users' columns that sort.
USER_SORTING = Sorting(
    keys={
        "username": ("username",),
        "name": ("first_name", "last_name", "username"),
        "email": ("email",),
        "last_login": ("last_login",),
        "active": ("is_active", "username"),
    },
    default="username",
    nullable=frozenset({"last_login"}),
)


def user_list() -> QuerySet[User]:
    """Every user, active ones first, by username; groups prefetched for ``role_of``."""
    return User.objects.prefetch_related("groups").order_by("-is_active", "username")


def user_search(*, query: str = "", sort: str = "") -> QuerySet[User]:
    """Admin > Users: those with every word of ``query`` in their username, name or e-mail."""
    users = User.objects.prefetch_related("groups")
    for word in search_words(query):
        users = users.filter(
            Q(username__icontains=word)
            | Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(email__icontains=word)
        )
    return USER_SORTING.apply(users, sort)


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
