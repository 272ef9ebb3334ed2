"""What the Audit log page calls each action and object type."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from audit import SCHEDULE, SYSTEM
from audit.actions import AuditAction

#: Each action's label, in the order the Audit log's filter offers them.
ACTIONS = dict(AuditAction.choices)

#: Who acted when no user did.
ACTORS = {SCHEDULE: _("The schedule"), SYSTEM: _("The system")}

OBJECT_TYPES = {
    "connection": _("Connection"),
    "export": _("Export"),
    "segment": _("Segment"),
    "erasure": _("Erasure"),
    "refreshschedule": _("Refresh schedule"),
    "user": _("User"),
    "apitoken": _("API token"),
    "endpoint": _("Webhook"),
}
