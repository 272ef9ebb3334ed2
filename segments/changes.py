"""Which profiles changed since a reader saw them: the log the database's triggers keep.

Triggers on the profiles and the segment memberships (migration 0009) log, per statement, the
id of every profile whose row was updated or deleted, or whose membership of a segment was
written, with the transaction that wrote it; a statement over more than 100,000 rows logs one
row without an id (any profile may have changed). Any writer is logged, the app or a hand in
SQL. Inserted profiles are not: a new profile is nobody's member until its membership is
written.

A reader records what it saw (``seen_now``) before it reads the profiles: the snapshot of the
transactions its statements see at least, and the log's last id. What changed since is then
the log's rows after that id, and those of a transaction that snapshot did not see (numbered
earlier, committed later). Both are found by index, however long the log.

Rows every reader has seen are forgotten (``forget_seen``). Recording what one saw and
forgetting exclude each other (an advisory lock), so that no row is forgotten between a
reader's snapshot and the moment others can know of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection, transaction

from segments.models import ProfileChange

LOG = ProfileChange._meta.db_table
# pg_advisory_xact_lock's key for the log ("PCHG").
_LOCK_KEY = 0x50434847


@dataclass(frozen=True)
class Seen:
    """What a reader saw: its snapshot (``pg_snapshot`` as text) and the log's last id then."""

    snapshot: str
    last_id: int

    def as_json(self) -> list:
        return [self.snapshot, self.last_id]

    @classmethod
    def from_json(cls, value: object) -> Seen | None:
        """The ``Seen`` of ``as_json``'s value, or None for anything else."""
        match value:
            case [str(snapshot), int(last_id)]:
                return cls(snapshot, last_id)
        return None


def seen_now() -> Seen:
    """What the statements of this transaction see from now on, at least (PostgreSQL). Call
    it in the transaction that reads the profiles and records it, before reading them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", (_LOCK_KEY,))
        cursor.execute(f"SELECT pg_current_snapshot()::text, COALESCE(max(id), 0) FROM {LOG}")
        snapshot, last_id = cursor.fetchone()
    return Seen(snapshot, last_id)


def changed_since_sql(seen: Seen) -> tuple[str, tuple]:
    """A query (and its parameters) for the ``profile_id`` of every change ``seen`` did not
    see (NULL: any profile may have changed); a profile may come more than once."""
    return (
        f"SELECT profile_id FROM {LOG}"
        " WHERE (id > %s OR transaction_id >= pg_snapshot_xmin(%s::pg_snapshot)::text::bigint)"
        " AND (id > %s OR NOT pg_visible_in_snapshot(transaction_id::text::xid8, %s::pg_snapshot))",
        (seen.last_id, seen.snapshot, seen.last_id, seen.snapshot),
    )


def forget_seen(readers: Callable[[], Iterable[Seen]]) -> int:
    """Delete the log's rows that every reader that may still ask (``readers``, called once
    none is recording what it saw) has seen: those of transactions that ended before each
    one's snapshot; return how many. A reader to come sees every row there is now (a row is
    deleted only once committed). Does nothing while a reader is recording: the next call
    will."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK_KEY,))
        if not cursor.fetchone()[0]:
            return 0
        snapshots = [seen.snapshot for seen in readers()]
        if snapshots:
            oldest = ", ".join(["pg_snapshot_xmin(%s::pg_snapshot)"] * len(snapshots))
            cursor.execute(
                f"DELETE FROM {LOG} WHERE transaction_id < least({oldest})::text::bigint",
                snapshots,
            )
        else:
            cursor.execute(f"DELETE FROM {LOG}")
        return max(cursor.rowcount, 0)
