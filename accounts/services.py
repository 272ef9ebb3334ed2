"""Writes on users: create, change role, deactivate and reactivate.

The pages (Admin > Users), the API and the ``add_user`` command all go through these, so the
rules below hold whichever way a change arrives.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

import audit
from accounts.roles import ROLES_BY_RANK, Role, role_of
from audit.actions import AuditAction


class LastAdministrator(Exception):
    """The change would leave Audience Relay without an active administrator."""

    message = _(
        "Audience Relay needs at least one active administrator. Make another user an "
        "administrator first."
    )


def _administrators() -> Q:
    return Q(is_superuser=True) | Q(groups__name=Role.ADMINISTRATOR.group_name)


def _refuse_if_last_administrator(user: User) -> None:
    """Raise LastAdministrator if ``user`` is the only active administrator left."""
    if role_of(user) != Role.ADMINISTRATOR or not user.is_active:
        return
    # Lock the administrators' rows so that two administrators demoting each other at the
    # same moment cannot both succeed.
    administrators = set(
        User.objects.select_for_update(of=("self",))
        .filter(_administrators(), is_active=True)
        .values_list("pk", flat=True)
    )
    if not administrators - {user.pk}:
        raise LastAdministrator()


@transaction.atomic
def user_set_role(*, user: User, role: Role) -> None:
    """Make ``role`` the user's only role; refused for the last active administrator."""
    if role != Role.ADMINISTRATOR:
        _refuse_if_last_administrator(user)
    before = role_of(user)
    user.groups.remove(*Group.objects.filter(name__in=[r.group_name for r in ROLES_BY_RANK]))
    user.groups.add(Group.objects.get(name=role.group_name))
    audit.record(AuditAction.USER_ROLE_CHANGED, user, before={"role": before}, after={"role": role})


@transaction.atomic
def user_deactivate(*, user: User) -> None:
    """Deactivate the user: their sessions and API tokens stop working on the next request.

    ``ModelBackend`` refuses inactive users when a session is loaded, and
    ``accounts.tokens.token_authenticate`` refuses tokens of inactive users, so nothing has to
    be deleted: reactivating gives the user their tokens back.
    """
    _refuse_if_last_administrator(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    audit.record(
        AuditAction.USER_DEACTIVATED, user, before={"is_active": True}, after={"is_active": False}
    )


@transaction.atomic
def user_reactivate(*, user: User) -> None:
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit.record(
        AuditAction.USER_REACTIVATED, user, before={"is_active": False}, after={"is_active": True}
    )


@transaction.atomic
def user_create_or_update(
    *, username: str, role: Role, password: str | None = None, email: str = ""
) -> tuple[User, bool]:
    """Create the user, or update an existing one's role, e-mail and (when given) password.

    The password must pass ``AUTH_PASSWORD_VALIDATORS``; otherwise ``ValidationError`` is raised
    and nothing is saved.
    """
    user, created = User.objects.get_or_create(username=username)
    before = None if created else audit.snapshot(user)
    if email:
        user.email = email
    if password:
        validate_password(password, user)
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.save()
    audit.record(
        AuditAction.USER_CREATED if created else AuditAction.USER_UPDATED, user, before=before
    )
    if password:
        audit.record(AuditAction.USER_PASSWORD_SET, user, after={})
    user_set_role(user=user, role=role)
    return user, created


@transaction.atomic
def user_invite(
    *, username: str, email: str, role: Role, first_name: str = "", last_name: str = ""
) -> User:
    """Create a user without a password and e-mail them a one-time link to choose one."""
    from accounts.invitations import send_set_password_link

    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    user.set_unusable_password()
    user.save()
    audit.record(AuditAction.USER_CREATED, user)
    user_set_role(user=user, role=role)
    transaction.on_commit(lambda: send_set_password_link(user=user, invitation=True))
    return user


@transaction.atomic
def user_update(*, user: User, first_name: str, last_name: str, email: str, role: Role) -> None:
    """Change the user's name, e-mail and role; the role change follows ``user_set_role``."""
    if role != role_of(user):
        user_set_role(user=user, role=role)
    before = audit.snapshot(user)
    user.first_name, user.last_name, user.email = first_name, last_name, email
    user.save(update_fields=["first_name", "last_name", "email"])
    audit.record(AuditAction.USER_UPDATED, user, before=before)


def user_send_password_reset(*, user: User) -> None:
    """E-mail the user a one-time link to choose a new password; the old one keeps working.

    A user who never chose a password gets the invitation again instead.
    """
    from accounts.invitations import send_set_password_link

    send_set_password_link(user=user, invitation=not user.has_usable_password())
    audit.record(AuditAction.USER_PASSWORD_RESET_SENT, user, after={"email": user.email})
