"""Every action the audit log records: the value stored in ``AuditEntry.action`` and its label.

``audit.record`` takes only these, so that a new change point names its action here and the
Audit log page can show it. A value never changes once entries hold it.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    CONNECTION_CREATED = "connection.created", _("Connection added")
    CONNECTION_UPDATED = "connection.updated", _("Connection changed")
    CONNECTION_CREDENTIALS_REPLACED = (
        "connection.credentials_replaced",
        _("Connection credentials replaced"),
    )
    CONNECTION_REAUTHENTICATED = "connection.reauthenticated", _("Connection authenticated again")
    CONNECTION_DELETED = "connection.deleted", _("Connection removed")
    CONNECTION_KEYS_ROTATED = "connection.keys_rotated", _("Encryption keys rotated")
    CONSENT_READ_STARTED = (
        "connection.consent_read_started",
        _("Consent read-back started on demand"),
    )
    EXPORT_CREATED = "export.created", _("Export added")
    EXPORT_UPDATED = "export.updated", _("Export changed")
    EXPORT_DUPLICATED = "export.duplicated", _("Export duplicated")
    EXPORT_SCHEDULE_CHANGED = "export.schedule_changed", _("Export schedule turned on or off")
    EXPORT_SCHEDULE_PAUSED = "export.schedule_paused", _("Export schedule paused after failed runs")
    EXPORT_DETACHED = "export.detached", _("Export taken off its connection")
    EXPORT_DELETED = "export.deleted", _("Export removed")
    RUN_STARTED = "run.started", _("Run started")
    RUN_CANCELLED = "run.cancelled", _("Run cancelled")
    RUN_HELD = "run.held", _("Run stopped to await approval")
    RUN_APPROVED = "run.approved", _("Run awaiting approval approved")
    RUN_DISCARDED = "run.discarded", _("Run awaiting approval discarded")
    GUARD_DEFAULTS_UPDATED = "guard_defaults.updated", _("Safety thresholds changed")
    SOURCE_CREATED = "source.created", _("Source added")
    SOURCE_UPDATED = "source.updated", _("Source changed")
    SOURCE_DELETED = "source.deleted", _("Source removed")
    SOURCE_RUN_STARTED = "source.run_started", _("Source run started")
    SOURCE_REMOVAL_APPROVED = "source.removal_approved", _("Removal of missing profiles approved")
    SOURCE_REMOVAL_DECLINED = "source.removal_declined", _("Removal of missing profiles declined")
    SEGMENT_CREATED = "segment.created", _("Segment added")
    SEGMENT_UPDATED = "segment.updated", _("Segment changed")
    SEGMENT_DELETED = "segment.deleted", _("Segment removed")
    PROFILE_ERASED = "profile.erased", _("Person erased")
    SCHEDULE_UPDATED = "schedule.updated", _("Refresh schedule changed")
    USER_CREATED = "user.created", _("User added")
    USER_UPDATED = "user.updated", _("User changed")
    USER_ROLE_CHANGED = "user.role_changed", _("Role changed")
    USER_DEACTIVATED = "user.deactivated", _("User deactivated")
    USER_REACTIVATED = "user.reactivated", _("User reactivated")
    USER_PASSWORD_RESET_SENT = "user.password_reset_sent", _("Password link sent")
    USER_PASSWORD_SET = "user.password_set", _("Password set")
    API_TOKEN_CREATED = "api_token.created", _("API token created")
    API_TOKEN_REVOKED = "api_token.revoked", _("API token revoked")
    WEBHOOK_CREATED = "webhook.created", _("Webhook added")
    WEBHOOK_UPDATED = "webhook.updated", _("Webhook changed")
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", _("Webhook secret rotated")
    WEBHOOK_ENABLED = "webhook.enabled", _("Webhook enabled")
    WEBHOOK_DISABLED = "webhook.disabled", _("Webhook disabled")
    WEBHOOK_DELETED = "webhook.deleted", _("Webhook removed")
    EXCLUSION_ADDED = "exclusion.added", _("Exclusion added")
    EXCLUSION_UPDATED = "exclusion.updated", _("Exclusion changed")
    EXCLUSION_REMOVED = "exclusion.removed", _("Exclusion removed")
    CONSENT_RULE_UPDATED = "consent_rule.updated", _("Consent rule changed")


#: Saves of an object's settings: one that changed nothing is not recorded. (The other actions
#: are events in themselves, e.g. credentials replaced, whose secrets the log never shows.)
SAVES = frozenset(
    {
        AuditAction.CONNECTION_UPDATED,
        AuditAction.EXPORT_UPDATED,
        AuditAction.SEGMENT_UPDATED,
        AuditAction.SOURCE_UPDATED,
        AuditAction.SCHEDULE_UPDATED,
        AuditAction.USER_UPDATED,
        AuditAction.WEBHOOK_UPDATED,
        AuditAction.EXCLUSION_UPDATED,
        AuditAction.CONSENT_RULE_UPDATED,
        AuditAction.GUARD_DEFAULTS_UPDATED,
    }
)
