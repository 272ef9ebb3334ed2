"""What each accounts action asks for, and what a user without it is told
(``accounts.roles.ActionPermission``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.permissions import ActionPermission

MANAGE_USERS = ActionPermission(
    "accounts.manage_users", _("Only administrators can add users and change their roles.")
)
HOLD_API_TOKENS = ActionPermission(
    "accounts.add_apitoken",
    _("Only users with a role can hold API tokens. Ask an administrator for one."),
)
