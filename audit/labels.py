"""What the Audit log page calls each action and object type."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

ACTIONS = {
    "connection.created": _("Connection added"),
    "connection.updated": _("Connection changed"),
    "connection.credentials_replaced": _("Connection credentials replaced"),
    "connection.reauthenticated": _("Connection authenticated again"),
    "connection.deleted": _("Connection removed"),
    "connection.keys_rotated": _("Encryption keys rotated"),
    "export.created": _("Export added"),
    "export.updated": _("Export changed"),
    "export.duplicated": _("Export duplicated"),
    "export.schedule_changed": _("Export schedule turned on or off"),
    "export.schedule_paused": _("Export schedule paused after failed runs"),
    "export.detached": _("Export taken off its connection"),
    "export.deleted": _("Export removed"),
    "run.started": _("Run started"),
    "run.cancelled": _("Run cancelled"),
    "segment.created": _("Segment added"),
    "segment.updated": _("Segment changed"),
    "segment.deleted": _("Segment removed"),
    "profile.erased": _("Person erased"),
    "schedule.updated": _("Refresh schedule changed"),
    "user.created": _("User added"),
    "user.updated": _("User changed"),
    "user.role_changed": _("Role changed"),
    "user.deactivated": _("User deactivated"),
    "user.reactivated": _("User reactivated"),
    "user.password_reset_sent": _("Password link sent"),
    "user.password_set": _("Password set"),
    "api_token.created": _("API token created"),
    "api_token.revoked": _("API token revoked"),
    "webhook.created": _("Webhook added"),
    "webhook.updated": _("Webhook changed"),
    "webhook.secret_rotated": _("Webhook secret rotated"),
    "webhook.enabled": _("Webhook enabled"),
    "webhook.disabled": _("Webhook disabled"),
    "webhook.deleted": _("Webhook removed"),
}

#: Who acted when no user did.
ACTORS = {"schedule": _("The schedule"), "system": _("The system")}

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
