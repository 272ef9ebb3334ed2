"""Celery tasks of the audit log."""

from __future__ import annotations

from celery import shared_task


@shared_task
def purge_expired_entries() -> int:
    from audit.retention import audit_purge_expired

    return audit_purge_expired()
