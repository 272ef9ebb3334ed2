"""Reads of the audit log: filtered, newest first, a page at a time by keyset."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditEntry

PAGE_SIZE = 50


def audit_entries(
    *,
    who: str = "",
    object_type: str = "",
    object_id: str = "",
    action: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[AuditEntry]:
    """Entries matching every filter given, newest first (by id, which follows insertion).

    Dates are whole days in the current time zone, both ends included.
    """
    entries = AuditEntry.objects.order_by("-id")
    if who:
        entries = entries.filter(actor_label=who)
    if object_type:
        entries = entries.filter(object_type=object_type)
    if object_id:
        entries = entries.filter(object_id=object_id)
    if action:
        entries = entries.filter(action=action)
    if date_from:
        entries = entries.filter(at__gte=_start_of(date_from))
    if date_to:
        entries = entries.filter(at__lt=_start_of(date_to + dt.timedelta(days=1)))
    return entries


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def audit_page(
    entries: QuerySet[AuditEntry], *, before_id: int | None, size: int = PAGE_SIZE
) -> tuple[list[AuditEntry], int | None]:
    """One page of ``entries`` older than ``before_id``, and the cursor of the next page."""
    if before_id is not None:
        entries = entries.filter(id__lt=before_id)
    rows = list(entries[: size + 1])
    if len(rows) > size:
        return rows[:size], rows[size - 1].pk
    return rows, None
