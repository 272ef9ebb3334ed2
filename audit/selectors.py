"""Reads of the audit log: filtered, newest first, a page at a time by keyset."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.models import AuditEntry
from core.listing import Sorting, search_words

PAGE_SIZE = 50

#: Admin > Audit log's columns that sort; the id follows the time of each entry.
AUDIT_SORTING = Sorting(
    keys={
        "when": ("id",),
        "who": ("actor_label",),
        "action": ("action",),
        "object": ("object_type",),
    },
    default="-when",
)


def audit_entries(
    *,
    who: str = "",
    object_type: str = "",
    object_id: str = "",
    action: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    q: str = "",
) -> QuerySet[AuditEntry]:
    """Entries matching every filter given, newest first (by id, which follows insertion).

    Dates are whole days in the current time zone, both ends included; ``q`` finds every word
    in who did it or in the object's name.
    """
    entries = AuditEntry.objects.order_by("-id")
    for word in search_words(q):
        entries = entries.filter(Q(actor_label__icontains=word) | Q(object_label__icontains=word))
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
    entries: QuerySet[AuditEntry], *, cursor: str = "", sort: str = "", size: int | None = None
) -> tuple[list[AuditEntry], str | None]:
    """One page of ``entries`` in the order ``sort`` names (``AUDIT_SORTING``), after the row
    that ``cursor`` points at, and the cursor of the next page (None on the last one).

    A cursor is the id of the last row shown, then, when the order is not by time, a colon and
    that row's value in the sorted column: pages are found by keyset, never by offset.
    """
    size = size or PAGE_SIZE
    sort = AUDIT_SORTING.parse(sort)
    field = AUDIT_SORTING.keys[sort.removeprefix("-")][0]
    later = "lt" if sort.startswith("-") else "gt"
    entries = AUDIT_SORTING.apply(entries, sort)
    last_id, _, last_value = cursor.partition(":")
    if last_id.isdigit():
        if field == "id":
            entries = entries.filter(**{f"id__{later}": int(last_id)})
        else:
            entries = entries.filter(
                Q(**{f"{field}__{later}": last_value})
                | Q(**{field: last_value, f"id__{later}": int(last_id)})
            )
    rows = list(entries[: size + 1])
    if len(rows) <= size:
        return rows, None
    last = rows[size - 1]
    return rows[:size], str(last.pk) if field == "id" else f"{last.pk}:{getattr(last, field)}"
