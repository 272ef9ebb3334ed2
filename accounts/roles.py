"""The three roles of Audience Relay, each a group of permissions (product.md, Roles).

Views never test group names: they ask for a permission with ``permission_required``
(``core.permissions``) and the role's group grants it. Each action's permission and the refusal
a user without it reads are one ``core.permissions.ActionPermission``, declared once in its
app's ``permissions.py`` and used by the page decorators and the API alike. The
group-to-permission mapping lives in migrations so that it is the same on every installation;
``grant_permissions`` is the helper those migrations call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", _("Administrator")
    CONTRIBUTOR = "contributor", _("Contributor")
    VIEWER = "viewer", _("Viewer")

    @property
    def group_name(self) -> str:
        return self.value.capitalize()


ROLES_BY_RANK = (Role.ADMINISTRATOR, Role.CONTRIBUTOR, Role.VIEWER)

_VIEWER = [
    "segments.view_profile",
    "segments.view_segment",
    "exports.view_export",
    "exports.view_status",
    "sources.view_source",
    # Every role may hold personal API tokens; a token can do what its user can.
    "accounts.add_apitoken",
]
_CONTRIBUTOR = [
    *_VIEWER,
    "segments.add_segment",
    "segments.change_segment",
    "segments.delete_segment",
    "segments.refresh_segment",
    "connections.use_connection",
    "exports.add_export",
    "exports.change_export",
    "exports.delete_export",
    "exports.run_export",
]
_ADMINISTRATOR = [
    *_CONTRIBUTOR,
    "segments.import_profiles",
    "connections.add_connection",
    "connections.change_connection",
    "connections.delete_connection",
    "connections.view_connection",
    "sources.add_source",
    "sources.change_source",
    "sources.delete_source",
    "sources.run_source",
    "exports.change_schedule",
    "exports.change_guard_defaults",
    "exports.manage_exclusion",
    "accounts.manage_users",
    "webhooks.manage_webhook",
    "audit.view_auditentry",
]
#: What each role may do (product.md, Roles). The migrations create the groups from the lists
#: of their day; ``sync_role_groups`` keeps the groups complete after every migrate and flush.
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.VIEWER: _VIEWER,
    Role.CONTRIBUTOR: _CONTRIBUTOR,
    Role.ADMINISTRATOR: _ADMINISTRATOR,
}


def role_of(user: Any) -> Role | None:
    """The highest role the user holds, or None for anonymous users and users without one."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMINISTRATOR
    group_names = {group.name for group in user.groups.all()}
    for role in ROLES_BY_RANK:
        if role.group_name in group_names:
            return role
    return None


def grant_permissions(apps: Any, grants: Mapping[Role, Iterable[str]]) -> None:
    """Give each role's group the named permissions ("app_label.codename"); used by migrations."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, perms in grants.items():
        group, _created = group_model.objects.get_or_create(name=role.group_name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )


def sync_role_groups(**kwargs: Any) -> None:
    """post_migrate: make sure every role's group exists and holds its permissions.

    Permissions of apps not migrated yet are skipped; a later post_migrate call adds them.
    """
    from django.contrib.auth.models import Group, Permission

    for role, perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role.group_name)
        wanted = [perm.split(".") for perm in perms]
        query = models.Q()
        for app_label, codename in wanted:
            query |= models.Q(content_type__app_label=app_label, codename=codename)
        group.permissions.add(*Permission.objects.filter(query))
