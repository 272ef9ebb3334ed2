"""Writes on users."""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.db import transaction

from accounts.roles import ROLES_BY_RANK, Role


@transaction.atomic
def user_set_role(*, user: User, role: Role) -> None:
    """Make ``role`` the user's only role."""
    user.groups.remove(*Group.objects.filter(name__in=[r.group_name for r in ROLES_BY_RANK]))
    user.groups.add(Group.objects.get(name=role.group_name))


@transaction.atomic
def user_create_or_update(
    *, username: str, role: Role, password: str | None = None, email: str = ""
) -> tuple[User, bool]:
    """Create the user, or update an existing one's role, e-mail and (when given) password."""
    user, created = User.objects.get_or_create(username=username)
    if email:
        user.email = email
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.save()
    user_set_role(user=user, role=role)
    return user, created
