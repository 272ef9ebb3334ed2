"""Audit entries are append-only: the model, the queryset and (on PostgreSQL) a trigger refuse
changes; only the retention purge removes entries, and only expired ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

import audit
from audit.models import AuditEntry, AuditLogIsAppendOnly
from audit.retention import audit_purge_expired
from audit.tasks import purge_expired_entries

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry():
    return audit.record("segment.created", object_type="segment", object_id=1, after={"name": "A"})


def test_the_model_refuses_to_change_or_delete_an_entry(entry):
    entry.action = "segment.deleted"
    with pytest.raises(AuditLogIsAppendOnly):
        entry.save()
    with pytest.raises(AuditLogIsAppendOnly):
        entry.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.all().delete()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditentry SET action = 'x'",
        "DELETE FROM audit_auditentry",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(entry, statement):
    assert connection.vendor == "postgresql"
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEntry.objects.get(pk=entry.pk).action == "segment.created"


def _age(entry: AuditEntry, days: int) -> None:
    """Backdate an entry, as the purge would find it after ``days`` days."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
        cursor.execute(
            "UPDATE audit_auditentry SET at = %s WHERE id = %s",
            [timezone.now() - timedelta(days=days), entry.pk],
        )
        cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_entry_append_only")


def test_the_purge_removes_only_entries_older_than_the_retention(settings, entry):
    settings.AUDIT_RETENTION_DAYS = 400
    old = audit.record("segment.deleted", object_type="segment", object_id=2, after=None)
    _age(old, 401)
    _age(entry, 399)
    assert audit_purge_expired() == 1
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [entry.pk]


def test_the_purge_runs_daily_from_celery_beat(settings, entry):
    schedule = settings.CELERY_BEAT_SCHEDULE["purge-expired-audit-entries"]
    assert schedule["task"] == "audit.tasks.purge_expired_entries"
    assert schedule["schedule"].hour == {3}
    _age(entry, 1000)
    assert purge_expired_entries.delay().get() == 1


def test_the_retention_defaults_to_400_days():
    from config.settings import base

    assert base.AUDIT_RETENTION_DAYS == 400
