"""What the webhooks actions ask for, and what a user without it is told: used by the pages'
decorators and the API's permission class alike (``accounts.roles.ActionPermission``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.permissions import ActionPermission

MANAGE_WEBHOOK = ActionPermission(
    "webhooks.manage_webhook",
    _(
        "Only administrators can see and change webhooks. Ask an administrator if your system "
        "needs to hear about runs, refreshes or connections."
    ),
)
