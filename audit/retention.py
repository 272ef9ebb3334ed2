"""The only way audit entries leave the database: the daily purge of expired ones."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEntry


def audit_purge_expired() -> int:
    """Delete the entries older than ``AUDIT_RETENTION_DAYS``; return how many went.

    On PostgreSQL a trigger refuses every UPDATE and DELETE of an entry unless the transaction
    says it is the purge (``audit.purging``); the ORM's delete is refused in the model.
    """
    cutoff = timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL audit.purging = 'on'")
        cursor.execute(f"DELETE FROM {AuditEntry._meta.db_table} WHERE at < %s", [cutoff])
        return cursor.rowcount
