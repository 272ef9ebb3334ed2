"""What reading the audit log asks for, and what a user without it is told
(``accounts.roles.ActionPermission``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.permissions import ActionPermission

VIEW_AUDIT_ENTRY = ActionPermission(
    "audit.view_auditentry", _("Only administrators can read the audit log.")
)
