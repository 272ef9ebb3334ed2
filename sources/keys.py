"""The customer ids a run reads: a customer id read twice in one run is rejected the second
time, and a full run with "remove missing profiles" removes the profiles whose ids it did not
read.

Where a run keeps them depends on what they are for:

* with "remove missing profiles", in ``SourceKey`` rows stamped with the run, committed with
  each batch: the removal judges on every id of the whole reading, a reading that died and
  was gone on with included (``services._go_on_from_dead_run`` hands its rows over);
* without it (PostgreSQL), only for the run's own duration, in a temporary table of the
  worker's session (``RunKeys``): no write-ahead log, no row kept. Recording them in
  ``SourceKey`` as well was a fifth to a quarter of a full sync (measured: the README's
  "Sources, a full sync"). A reading that dies and is gone on with after its last committed
  customer id (in customer id order) cannot read a row of the dead reading again, so it needs
  none of the dead reading's ids; the one case it cannot see is two ids that differ only by
  spaces around them (the same id once trimmed), one on each side of the kill, the later of
  which then updates the profile instead of being rejected.

``SourceKey`` then holds only the ids read while the option was on. Turning it on
(``seed_keys``) adds the customer ids of the profiles whose fields this source set last, so
the next removal also judges the profiles the source gave while it was off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from psycopg import errors

from config.translation import gettext_later as _
from config.translation import stored
from segments.models import Profile
from segments.staging import STAGING_TABLE, StagedRows, escaped
from sources.models import Source, SourceKey, SourceRun

EARLIER_IN_RUN = _("This customer id was already read earlier in this run.")
#: The session's temporary table of the ids read by the run in progress.
RUN_KEYS_TABLE = "source_run_keys"


def records_source_keys(source: Source) -> bool:
    """Whether a run of ``source`` records its ids in ``SourceKey`` (rather than only for its
    own duration): the removal of missing profiles judges on them."""
    return source.remove_missing and source.sync_mode == Source.SyncMode.FULL


@contextmanager
def run_keys(run: SourceRun) -> Iterator[None]:
    """For the run's duration, the session's table of the ids it read, when they are not
    recorded in ``SourceKey`` (PostgreSQL). Created outside the batches' transactions, so it
    holds the ids of every committed batch (a batch rolled back takes its ids with it)."""
    if connection.vendor != "postgresql" or records_source_keys(run.source):
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {RUN_KEYS_TABLE}")
        cursor.execute(f"CREATE TEMP TABLE {RUN_KEYS_TABLE} (customer_id text PRIMARY KEY)")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {RUN_KEYS_TABLE}")


def remember_staged_keys(run: SourceRun, repeated: list[dict], cursor) -> None:
    """Take out of the staging table (``segments.staging.STAGING_TABLE``) the rows of an id
    the run read in an earlier batch, rejected and listed in ``repeated``, and remember the
    others' ids (from the staging table: the ids are not sent again). The staged ids are
    distinct and not empty (``services._first_of_each_key`` and the import's checks)."""
    if records_source_keys(run.source):
        _remember_in_source_keys(run, repeated, cursor)
        return
    # Each staged id looked up by the index (``OFFSET 0`` keeps the subquery apart): a join
    # hashed the whole table for every batch (90 against 10 CPU-ms a batch at 500,000 ids).
    cursor.execute(
        f"DELETE FROM {STAGING_TABLE} staged WHERE EXISTS (SELECT FROM {RUN_KEYS_TABLE} earlier"
        " WHERE earlier.customer_id = staged.customer_id OFFSET 0)"
        " RETURNING line_no, customer_id"
    )
    _list_repeated(repeated, cursor.fetchall())
    cursor.execute(f"INSERT INTO {RUN_KEYS_TABLE} SELECT customer_id FROM {STAGING_TABLE}")


def remember_new_keys(run: SourceRun, customer_ids: list[str], cursor) -> bool:
    """Remember the ids of a batch stored without staging (``storing.copy_new_profiles``):
    False, with some of them remembered, when the run read one of them before (the caller
    undoes its savepoint). The ids are distinct and not empty."""
    if records_source_keys(run.source):
        table = SourceKey._meta.db_table
        cursor.execute(
            f"INSERT INTO {table} (source_id, customer_id, run_id)"
            " SELECT %s, unnest(%s::text[]), %s"
            " ON CONFLICT (source_id, customer_id) DO UPDATE SET run_id = EXCLUDED.run_id"
            f" WHERE {table}.run_id IS DISTINCT FROM EXCLUDED.run_id",
            [run.source_id, customer_ids, run.pk],
        )
        return cursor.rowcount == len(customer_ids)
    text = "\n".join(customer_ids) + "\n"
    if text.count("\n") != len(customer_ids) or any(char in text for char in "\\\t\r"):
        text = "".join(map("%s\n".__mod__, map(escaped, customer_ids)))
    try:
        with cursor.cursor.copy(f"COPY {RUN_KEYS_TABLE} FROM STDIN") as copy:
            copy.write(text.encode())
    except errors.UniqueViolation:
        return False
    return True


def _remember_in_source_keys(run: SourceRun, repeated: list[dict], cursor) -> None:
    table = SourceKey._meta.db_table
    cursor.execute(
        f"WITH fresh AS (INSERT INTO {table} (source_id, customer_id, run_id)"
        f" SELECT %s, customer_id, %s FROM {STAGING_TABLE}"
        " ON CONFLICT (source_id, customer_id) DO UPDATE SET run_id = EXCLUDED.run_id"
        f" WHERE {table}.run_id IS DISTINCT FROM EXCLUDED.run_id"
        " RETURNING customer_id)"
        f" DELETE FROM {STAGING_TABLE} staged"
        " WHERE NOT EXISTS (SELECT FROM fresh WHERE fresh.customer_id = staged.customer_id)"
        " RETURNING line_no, customer_id",
        [run.source_id, run.pk],
    )
    _list_repeated(repeated, cursor.fetchall())


def _list_repeated(repeated: list[dict], rows: list[tuple[int, str]]) -> None:
    repeated += [
        {"line": line, "key": customer_id, "reason": stored(EARLIER_IN_RUN)}
        for line, customer_id in rows
    ]


def without_earlier_keys(run: SourceRun, staged: StagedRows) -> tuple[StagedRows, list[dict]]:
    """SQLite's ``remember_staged_keys`` (the demo's small files), before the rows are
    stored: the ids always go to ``SourceKey``."""
    customer_ids = [cid for cid in staged.customer_ids if cid]
    earlier = set(
        SourceKey.objects.filter(
            source=run.source, run=run, customer_id__in=customer_ids
        ).values_list("customer_id", flat=True)
    )
    SourceKey.objects.bulk_create(
        [SourceKey(source_id=run.source_id, customer_id=cid, run=run) for cid in customer_ids],
        update_conflicts=True,
        unique_fields=["source", "customer_id"],
        update_fields=["run"],
        batch_size=500,
    )
    if not earlier:
        return staged, []
    kept, rejected = [], []
    for index, (customer_id, line) in enumerate(
        zip(staged.customer_ids, staged.lines, strict=True)
    ):
        if customer_id in earlier:
            rejected.append({"line": line, "key": customer_id, "reason": stored(EARLIER_IN_RUN)})
        else:
            kept.append(index)
    return rows_of(staged, kept), rejected


def rows_of(staged: StagedRows, kept: list[int]) -> StagedRows:
    """The staged rows at the indexes ``kept``."""
    columns = [
        [column[index] for index in kept]
        for column in (
            staged.lines,
            staged.customer_ids,
            staged.emails,
            staged.first_names,
            staged.last_names,
        )
    ]
    entries = [[column[index] for index in kept] for column in staged.attribute_entries]
    return StagedRows(*columns, entries, staged.gaps)


def seed_keys(source: Source) -> None:
    """``source`` starts removing missing profiles: its ids read while it did not (not
    recorded) are taken to be those of the profiles one of whose fields it set last
    (``Profile.field_origins``). PostgreSQL only: elsewhere every run records its ids."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SourceKey._meta.db_table} (source_id, customer_id, run_id)"
            f" SELECT %s, customer_id, NULL FROM {Profile._meta.db_table}"
            " WHERE jsonb_path_exists(field_origins, '$.* ? (@ == $source)',"
            " jsonb_build_object('source', %s::bigint))"
            " ON CONFLICT (source_id, customer_id) DO NOTHING",
            [source.pk, source.pk],
        )
