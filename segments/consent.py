"""Consent records: storing what a connection's read-back found, and reading them per person.

The read-back itself (``connections.consent``) pages through a service; each page's events come
here, are normalised and de-duplicated, and are stored with one set-based upsert on the
records' unique key (address, connection, list, state, channel). A record is never lifted here:
an upsert only adds records or moves one to a later date.

Segments never import connections: an event is anything with the attributes of
``connections.types.base.ConsentEvent`` (``email``, ``state``, ``occurred_at``, ``list_id``,
``reason``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import TYPE_CHECKING, Protocol

from django.db import connection, transaction
from django.db.models import QuerySet

from core.consent import Channel, ConsentState
from segments.models import ConsentRecord, Profile

if TYPE_CHECKING:
    from psycopg import Copy

#: The same test of an address as the import's and the exports' ("invalid e-mail").
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = ConsentRecord._meta.get_field("email").max_length or 320
MAX_LIST_ID_LENGTH = ConsentRecord._meta.get_field("list_id").max_length or 100
MAX_REASON_LENGTH = ConsentRecord._meta.get_field("reason").max_length or 200
_STATES = frozenset(ConsentState.values)
MAX_CONNECTION_NAME_LENGTH = ConsentRecord._meta.get_field("connection_name").max_length or 200
#: The session's temporary table a read-back's events are copied to before the upsert.
_STAGED = "consent_records_staged"


class Event(Protocol):
    email: str
    state: str
    occurred_at: datetime | None
    list_id: str
    reason: str


@dataclass(frozen=True)
class Applied:
    """What one page of events did: ``new`` records stored, ``invalid`` events dropped (an
    empty or malformed address, a state we do not know)."""

    new: int
    invalid: int


def normalise_email(text: object) -> str:
    """The address as records keep it (trimmed, lower-case), or "" when it is not one."""
    if not isinstance(text, str):
        return ""
    email = text.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _ADDRESS.match(email):
        return ""
    return email


def _later(first: datetime | None, second: datetime | None) -> bool:
    """Whether ``second`` is later than ``first`` (a known date is later than none)."""
    if second is None:
        return False
    return first is None or second > first


def _valid_rows(events: Iterable[Event]) -> tuple[list[tuple], int]:
    """The events as rows (email, state, list, occurred_at, reason), normalised, and how many
    were dropped (an empty or malformed address, a state we do not know). Repeats stay: the
    store keeps one row per key, the latest."""
    rows = []
    invalid = 0
    matches = _ADDRESS.match
    for event in events:
        email = event.email
        state = event.state
        if email.__class__ is not str or state not in _STATES:
            invalid += 1
            continue
        email = email.strip().lower()
        if len(email) > MAX_EMAIL_LENGTH or matches(email) is None:
            invalid += 1
            continue
        rows.append(
            (
                email,
                str(state),
                (event.list_id or "")[:MAX_LIST_ID_LENGTH],
                event.occurred_at,
                (event.reason or "")[:MAX_REASON_LENGTH],
            )
        )
    return rows, invalid


class EventColumns(Protocol):
    """A page's events column by column (``connections.types.base.ConsentColumns``)."""

    emails: Sequence[str]
    state: str
    occurred_at: Sequence[datetime | None]
    list_id: str
    reasons: Sequence[str] | None

    def __len__(self) -> int: ...


#: ``_ADDRESS`` for each line of a text.
_ADDRESS_LINES = re.compile(_ADDRESS.pattern, re.MULTILINE)
#: What ``COPY``'s text format writes with a backslash.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(columns: EventColumns) -> str | None:
    """The columns' events as ``COPY`` text (email, state, list, occurred_at, reason), made a
    column at a time, with the checks of ``_valid_rows``; None when some event is invalid (the
    caller then looks at them one by one)."""
    if not len(columns):
        return ""
    state = str(columns.state)
    emails = list(map(str.lower, map(str.strip, columns.emails)))
    joined = "\n".join(emails)
    if (
        state not in _STATES
        or "\x00" in joined
        or joined.count("\n") != len(emails) - 1
        or max(map(len, emails)) > MAX_EMAIL_LENGTH
        or len(_ADDRESS_LINES.findall(joined)) != len(emails)
    ):
        return None
    if "\\" in joined:  # an address has no other character COPY escapes
        emails = [email.replace("\\", "\\\\") for email in emails]
    middle = f"\t{state}\t{(columns.list_id or '')[:MAX_LIST_ID_LENGTH].translate(_COPY_ESCAPES)}\t"
    times: dict[datetime | None, str] = {None: "\\N"}
    for moment in columns.occurred_at:
        if moment not in times:
            times[moment] = moment.isoformat()  # type: ignore[union-attr]
    if columns.reasons is None:
        reasons: Iterable[str] = repeat("")
    else:
        said = "\x00".join(
            columns.reasons
            if max(map(len, columns.reasons), default=0) <= MAX_REASON_LENGTH
            else (reason[:MAX_REASON_LENGTH] for reason in columns.reasons)
        )
        if said.count("\x00") != len(emails) - 1:  # a reason holding a NUL: PostgreSQL refuses it
            return None
        reasons = said.translate(_COPY_ESCAPES).split("\x00")
    lines = zip(
        emails, repeat(middle), map(times.__getitem__, columns.occurred_at), repeat("\t"), reasons
    )
    return "\n".join(map("".join, lines)) + "\n"


def _latest(rows: Iterable[tuple]) -> list[tuple]:
    """One row per key (email, list, state): the one with the latest date."""
    latest: dict[tuple[str, str, str], tuple] = {}
    for row in rows:
        key = (row[0], row[2], row[1])
        kept = latest.get(key)
        if kept is None or _later(kept[3], row[3]):
            latest[key] = row
    return list(latest.values())


def _rows(events: Iterable[Event]) -> tuple[list[tuple], int]:
    """The page's events as rows, one per key with the latest date, and how many were
    dropped."""
    rows, invalid = _valid_rows(events)
    return _latest(rows), invalid


class ConsentStaging:
    """Consent events stored in two steps, so that a read-back sends each page to PostgreSQL
    as it arrives and stores everything sent at its checkpoints:

    - ``add`` normalises a page's events and copies them (``COPY``) to a temporary table of
      the session, outside any transaction: PostgreSQL takes them in while the next page is
      read, and Python keeps nothing;
    - ``apply`` stores what was added since the last ``apply`` with one set-based upsert (one
      row per key, the latest), in the caller's transaction, and empties the table.

    What was added and not applied is lost with the session (a killed worker), never stored
    twice. ``start`` empties what an earlier read of the session left. Elsewhere than on
    PostgreSQL (the demo's SQLite) the rows wait in memory.

    ``own_session``: nothing else uses the session between the calls (the read-back stores on
    a connection of its own), so one ``COPY`` stays open from an ``add`` to the next
    ``apply``: PostgreSQL takes each page in as it is written, without a round trip a page."""

    def __init__(self, *, own_session: bool = False) -> None:
        self.postgresql = connection.vendor == "postgresql"
        self.own_session = own_session
        self._held: list[tuple] = []
        self._copying: ExitStack | None = None
        self._copy: Copy | None = None
        self.added = 0

    def start(self) -> None:
        self._held, self.added = [], 0
        if self.postgresql:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGED}"
                    " (e text, s text, l text, o timestamptz, r text)"
                )
                cursor.execute(f"TRUNCATE {_STAGED}")

    def add(self, events: Iterable[Event]) -> int:
        """Send the events' valid rows; returns how many events were dropped as invalid."""
        if self.postgresql and hasattr(events, "emails"):
            text = _copy_text(events)  # type: ignore[arg-type]
            if text is not None:
                if text:
                    self.added += len(events)  # type: ignore[arg-type]
                    self._open_copy().write(text)
                    self._end_copy_unless_own_session()
                return 0
        rows, invalid = _valid_rows(events)
        if not rows:
            return invalid
        self.added += len(rows)
        if not self.postgresql:
            self._held.extend(rows)
            return invalid
        copy = self._open_copy()
        for row in rows:
            copy.write_row(row)
        self._end_copy_unless_own_session()
        return invalid

    def _open_copy(self) -> Copy:
        if self._copy is None:
            copying = ExitStack()
            cursor = copying.enter_context(connection.cursor())
            self._copy = copying.enter_context(cursor.cursor.copy(f"COPY {_STAGED} FROM STDIN"))
            self._copying = copying
        return self._copy

    def _end_copy_unless_own_session(self) -> None:
        if not self.own_session:
            self.end_copy()

    def end_copy(self) -> None:
        """Wait for PostgreSQL to have taken every row added: the session can do nothing else
        (begin the transaction ``apply`` runs in) while a ``COPY`` is open."""
        if self._copying is not None:
            copying, self._copying, self._copy = self._copying, None, None
            copying.close()

    def apply(self, *, connection_id: int, connection_name: str) -> int:
        """Store what was added since the last ``apply``; returns how many records are new. A
        record already held keeps its place and takes the event's date and reason when the
        event is later (a person who unsubscribed again). In a transaction of its own session,
        the caller ends the ``COPY`` (``end_copy``) before the transaction begins."""
        self.end_copy()
        if not self.added:
            return 0
        self.added = 0
        name = connection_name[:MAX_CONNECTION_NAME_LENGTH]
        if not self.postgresql:
            rows, self._held = _latest(self._held), []
            return _apply_one_by_one(connection_id, name, rows)
        table = ConsentRecord._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH stored AS (INSERT INTO {table} AS held"
                " (email, channel, state, connection_id, connection_name, list_id, occurred_at,"
                " reason)"
                " SELECT DISTINCT ON (e, l, s) e, %s, s, %s, %s, l, o, r"
                f" FROM {_STAGED} ORDER BY e, l, s, o DESC NULLS LAST"
                " ON CONFLICT (email, connection_id, list_id, state, channel) DO UPDATE"
                " SET occurred_at = EXCLUDED.occurred_at, reason = EXCLUDED.reason,"
                " connection_name = EXCLUDED.connection_name"
                " WHERE EXCLUDED.occurred_at > held.occurred_at"
                " OR (held.occurred_at IS NULL AND EXCLUDED.occurred_at IS NOT NULL)"
                # xmax is 0 on a row this statement inserted, not on one it updated.
                " RETURNING (xmax = 0) AS inserted)"
                " SELECT count(*) FILTER (WHERE inserted) FROM stored",
                [Channel.EMAIL, connection_id, name],
            )
            new = cursor.fetchone()[0]
            cursor.execute(f"TRUNCATE {_STAGED}")
        return new


def consent_records_apply(*, connection_id: int, connection_name: str, events: Iterable) -> int:
    """Store a page of consent events read back from a connection; returns how many records
    are new. Invalid addresses are dropped (``consent_records_apply_counted`` counts them)."""
    return consent_records_apply_counted(
        connection_id=connection_id, connection_name=connection_name, events=events
    ).new


@transaction.atomic
def consent_records_apply_counted(
    *, connection_id: int, connection_name: str, events: Iterable
) -> Applied:
    """``consent_records_apply``, saying also how many events were dropped as invalid.

    A record already held keeps its place; it takes the event's date and reason when the event
    is later (a person who unsubscribed again). Runs in the caller's transaction when there is
    one."""
    staging = ConsentStaging()
    staging.start()
    invalid = staging.add(events)
    new = staging.apply(connection_id=connection_id, connection_name=connection_name)
    return Applied(new, invalid)


def _apply_one_by_one(connection_id: int, name: str, rows: list[tuple]) -> int:
    """The demo's SQLite: the same outcome, a row at a time (pages there are small)."""
    new = 0
    for email, state, list_id, occurred_at, reason in rows:
        record, created = ConsentRecord.objects.get_or_create(
            email=email,
            connection_id=connection_id,
            list_id=list_id,
            state=state,
            channel=Channel.EMAIL,
            defaults={"connection_name": name, "occurred_at": occurred_at, "reason": reason},
        )
        if created:
            new += 1
        elif _later(record.occurred_at, occurred_at):
            record.occurred_at, record.reason, record.connection_name = occurred_at, reason, name
            record.save(update_fields=["occurred_at", "reason", "connection_name"])
    return new


# Reads ------------------------------------------------------------------------------------------


def consent_records_for_email(email: str) -> QuerySet[ConsentRecord]:
    """The records of an address (normalised as records keep it), latest first."""
    normalised = normalise_email(email)
    if not normalised:
        return ConsentRecord.objects.none()
    return ConsentRecord.objects.filter(email=normalised).order_by("-occurred_at", "-id")


def consent_records_for_profile(profile: Profile) -> QuerySet[ConsentRecord]:
    """The records that hold for a profile: those of its address."""
    return consent_records_for_email(profile.email)


def consent_record_search(
    *, email: str = "", state: str = "", connection_id: int | None = None
) -> QuerySet[ConsentRecord]:
    """The records for the API's listing, filtered; by id, so pages are stable."""
    records = ConsentRecord.objects.order_by("id")
    if email:
        records = records.filter(email=email.strip().lower())
    if state:
        records = records.filter(state=state)
    if connection_id is not None:
        records = records.filter(connection_id=connection_id)
    return records


def consent_stamp() -> list:
    """The newest record's id and how many there are: a segment whose rules read consent is
    refreshed again when either changes (``segments.membership.inputs_fingerprint``)."""
    table = ConsentRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT max(id) FROM {table}), (SELECT count(*) FROM {table})")
        return list(cursor.fetchone())
