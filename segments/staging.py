"""The profile upsert's PostgreSQL half: checked rows into a staging table, then one set-based
statement that writes only what changed.

Every way profiles come in (the CSV import, the API's bulk upsert, profile sources) ends here
after ``segments.importing`` has checked the rows, inside one transaction:

1. ``stage_rows``: ``COPY`` the rows (``StagedRows`` batches) into ``profile_import_rows``;
2. ``keep_latest_rows``: of a customer id on several rows, keep the last (and say which lines
   repeated one);
3. ``upsert_staged``: compare each row with its profile and write only new and changed ones.

A row that changes nothing is not written, locked or stamped: its ``updated_at`` stays, so
segment refreshes and export deltas see no change, and it leaves no dead tuple behind.

The CSV import's rows carry their line hashes, kept on the profiles they write; its unchanged
lines (``segments.line_hashes``) are staged apart, in ``UNCHANGED_TABLE``, by their line and
customer id only: they count in ``keep_latest_rows`` and are never written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction

from segments.models import Profile

STAGING_TABLE = "profile_import_rows"
#: The CSV import's rows left out because their profile is what their line made it: only their
#: line and customer id, to tell the repeated customer ids of the whole file.
UNCHANGED_TABLE = "profile_import_unchanged"
_STAGED_COLUMNS = "line_no, customer_id, email, first_name, last_name, attributes"
#: ``COPY`` text format: these characters in a value need a backslash escape.
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


@dataclass
class StagedRows:
    """Checked rows, column by column, as the staging table takes them: each row's line in
    the file, its four fixed fields ("" where the file has no such column) and its
    attributes as entries of a JSON object.

    ``attribute_entries`` has one list per attribute, ``"name": value`` per row in JSON
    ("" where the row has no value: ``gaps`` says whether any has none), attributes in the
    order PostgreSQL keeps an object's keys; a row's object is its entries joined."""

    lines: list[int]
    customer_ids: list[str]
    emails: list[str]
    first_names: list[str]
    last_names: list[str]
    attribute_entries: list[list[str]]
    gaps: bool = False
    #: The CSV import's (PostgreSQL): each row's file line hash, None where none is kept
    #: (``segments.importing``); stored on the profiles it writes.
    line_hashes: list[int | None] | None = None

    def __len__(self) -> int:
        return len(self.lines)

    def attributes(self) -> list[str]:
        """Each row's attributes as the text of a JSON object."""
        if not self.attribute_entries:
            return ["{}"] * len(self)
        rows = zip(*self.attribute_entries, strict=True)
        if self.gaps:  # an empty value leaves its key out of the row's object
            return list(map("{%s}".__mod__, map(", ".join, map(_present, rows))))
        return list(map("{%s}".__mod__, map(", ".join, rows)))

    def rows(self) -> Iterable[tuple[str, str, str, str, str]]:
        """(customer id, e-mail, first name, last name, attributes JSON) per row."""
        return zip(
            self.customer_ids,
            self.emails,
            self.first_names,
            self.last_names,
            self.attributes(),
            strict=True,
        )


#: A row's entries without the empty ones (C-level: no Python call per row).
_present = partial(filter, None)


def stage_rows(cursor, batches: Iterable[StagedRows], *, hashed: bool = False) -> int:
    """Create the transaction's staging table and ``COPY`` the batches into it; how many
    rows. The rows are formatted here while the database parses and stores the batch before
    (the socket's buffer between them): the two processes work at the same time, which is
    why the attributes are parsed as JSON here rather than when compared. (psycopg's queued
    writer would let batches pile up in memory when the database is the slower.)
    ``hashed``: the batches carry ``line_hashes``."""
    create_staging(cursor)
    return copy_rows(cursor, batches, hashed=hashed)


def create_staging(cursor, *, unchanged: bool = False) -> None:
    """The staging table (and with ``unchanged``, the one of the rows left out)."""
    cursor.execute(
        f"CREATE TEMP TABLE {STAGING_TABLE} (line_no bigint, customer_id text, email text,"
        " first_name text, last_name text, attributes jsonb, line_hash bigint) ON COMMIT DROP"
    )
    if unchanged:
        cursor.execute(
            f"CREATE TEMP TABLE {UNCHANGED_TABLE} (line_no bigint, customer_id text) ON COMMIT DROP"
        )


def copy_rows(cursor, batches: Iterable[StagedRows], *, hashed: bool = False) -> int:
    """``COPY`` the batches into the staging table, as one statement; how many rows."""
    columns = f"line_hash, {_STAGED_COLUMNS}" if hashed else _STAGED_COLUMNS
    copied = 0
    with cursor.cursor.copy(f"COPY {STAGING_TABLE} ({columns}) FROM STDIN") as copy:
        for batch in batches:
            copy.write(_copy_text(batch).encode())
            copied += len(batch)
    return copied


def _copy_text(batch: StagedRows) -> str:
    """The batch in ``COPY``'s text format for the staging table: its line hashes (when it
    has them) and lines before the profile's columns."""
    if batch.line_hashes is None:
        return profile_copy_text(batch, [batch.lines])
    nulls = batch.line_hashes.count(None)
    hashes = batch.line_hashes
    leading = [[_NULL if value is None else value for value in hashes] if nulls else hashes]
    return profile_copy_text(batch, [*leading, batch.lines], nulls=nulls)


def profile_copy_text(
    rows: StagedRows, leading: list[list], *, nulls: int = 0, after: str = ""
) -> str:
    """The rows' profile columns (customer id, email, names, attributes) in ``COPY``'s text
    format, made by one format per row (a row's JSON object too, when no attribute is
    missing): after the ``leading`` columns (values needing no escape; ``nulls`` of them
    ``COPY``'s NULL) and before ``after`` (the same text on every row, escaped, starting with
    its tab). A value holding a tab, a line break or a backslash (rare: found by counting the
    separators) is escaped."""
    fixed = [rows.customer_ids, rows.emails, rows.first_names, rows.last_names]
    count = len(rows)
    start = "%s\t" * len(leading)
    end = after.replace("%", "%%") + "\n"
    if rows.attribute_entries and not rows.gaps:
        entries = rows.attribute_entries
        line = start + "%s\t%s\t%s\t%s\t{" + ", ".join(["%s"] * len(entries)) + "}" + end
        text = "".join(map(line.__mod__, zip(*leading, *fixed, *entries, strict=True)))
    else:
        text = _joined(start, end, leading, [*fixed, rows.attributes()])
    tabs = (4 + len(leading) + after.count("\t")) * count
    backslashes = nulls + after.count("\\") * count
    if (
        text.count("\t") == tabs
        and text.count("\n") == count
        and text.count("\\") == backslashes
        and "\r" not in text
    ):
        return text
    escaped_fixed = [[escaped(value) for value in column] for column in fixed]
    # JSON text has no raw tab or line break, only backslashes (its own escapes) to double.
    attributes = [value.replace("\\", "\\\\") for value in rows.attributes()]
    return _joined(start, end, leading, [*escaped_fixed, attributes])


#: ``COPY``'s NULL.
_NULL = "\\N"


def _joined(start: str, end: str, leading: list[list], columns: list[list[str]]) -> str:
    line = start + "%s\t%s\t%s\t%s\t%s" + end
    return "".join(map(line.__mod__, zip(*leading, *columns, strict=True)))


def escaped(value: str) -> str:
    """``value`` as ``COPY``'s text format holds it."""
    if not _NEEDS_ESCAPE.search(value):
        return value
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def keep_latest_rows(cursor, *, unchanged: bool = False) -> tuple[int, list[tuple[int, int, str]]]:
    """Of a customer id on several staged rows, keep the last (as importing the rows one
    after another would). Returns how many rows remain (one per customer id) and, when some
    id repeated, each later line with the first line of its id and the id, in line order.
    ``unchanged``: the rows of ``UNCHANGED_TABLE`` count too (a staged row before one of
    them is dropped; they are never written), in the count and the repeated lines."""
    rows = STAGING_TABLE
    if unchanged:
        rows = (
            f"(SELECT line_no, customer_id FROM {STAGING_TABLE}"
            f" UNION ALL SELECT line_no, customer_id FROM {UNCHANGED_TABLE}) every_row"
        )
    cursor.execute(f'SELECT count(*), count(DISTINCT customer_id COLLATE "C") FROM {rows}')
    staged, distinct = cursor.fetchone()
    if distinct == staged:
        return distinct, []
    cursor.execute(
        "SELECT line_no, first_line, customer_id FROM (SELECT line_no, customer_id,"
        f" min(line_no) OVER (PARTITION BY customer_id) AS first_line FROM {rows})"
        " repeated WHERE line_no > first_line ORDER BY line_no"
    )
    repeated = cursor.fetchall()
    cursor.execute(
        f"DELETE FROM {STAGING_TABLE} staged USING (SELECT customer_id, max(line_no) AS last_line"
        f" FROM {rows} GROUP BY customer_id HAVING count(*) > 1) latest"
        " WHERE staged.customer_id = latest.customer_id AND staged.line_no < latest.last_line"
    )
    return distinct, repeated


def upsert_staged(
    cursor,
    updatable: list[str],
    attribute_columns: list[str],
    outcomes: bool = False,
    origins: str | None = None,
    staged_rows: int | None = None,
    hashed: bool = False,
) -> tuple[int, int] | list[tuple[str, bool | None]]:
    """Create the staged rows' new profiles and update the changed ones (one row per
    customer id: ``keep_latest_rows`` first). ``updatable``: the fixed fields the rows set;
    ``attribute_columns``: the attributes they set (replaced; others kept as they are);
    ``origins``: the JSON object (``segments.origins.stamp``) merged into the
    ``field_origins`` of each profile written (the one constant for the whole statement).

    A staged row is first compared with its profile (its attributes as they are, else merged
    into the profile's): an unchanged row is never touched. Returns (created, updated), or
    with ``outcomes`` each customer id with True (created), False (updated) or None
    (unchanged). ``staged_rows``: how many rows are staged (``keep_latest_rows``), to choose
    how their profiles are found. ``hashed``: each profile written keeps its row's
    ``line_hash`` (the CSV import's, ``store_line_hashes``).
    """
    table = Profile._meta.db_table
    if staged_rows is not None and staged_rows < _INDEX_ROWS_PER_PAGE * _pages(cursor, table):
        # Few rows for the table (an API call, a small file): each profile is looked up by
        # its customer id. PostgreSQL otherwise hashes the whole table for every call, a cost
        # that grows with the table: 0.6 s for 10,000 records against 100,000 profiles, 0.14
        # by the index. A whole file still hashes it: the same for 200,000 rows, read in order.
        profiles = (
            f"LEFT JOIN LATERAL (SELECT id, email, first_name, last_name, attributes"
            f" FROM {table} WHERE {table}.customer_id = staged.customer_id OFFSET 0)"
            " profile ON true"
        )
    else:
        profiles = f"LEFT JOIN {table} profile ON profile.customer_id = staged.customer_id"
    unchanged = " AND ".join(
        [
            *(f"profile.{name} = staged.{name}" for name in updatable),
            "CASE WHEN profile.attributes = staged.attributes THEN true"
            " ELSE (profile.attributes - %(columns)s::text[]) || staged.attributes"
            " = profile.attributes END",
        ]
    )
    set_columns = "".join(f"{name} = EXCLUDED.{name}, " for name in updatable)
    merged = f"({table}.attributes - %(columns)s::text[]) || EXCLUDED.attributes"
    compared = ", ".join([*(f"{table}.{name}" for name in updatable), f"{table}.attributes"])
    proposed = ", ".join([*(f"EXCLUDED.{name}" for name in updatable), merged])
    stamped = (
        f", field_origins = COALESCE({table}.field_origins, '{{}}') || EXCLUDED.field_origins"
        if origins is not None
        else ""
    )
    hash_column, hash_value = ("", "")
    if hashed:
        hash_column, hash_value = ", import_line_hash", ", line_hash"
        stamped += ", import_line_hash = EXCLUDED.import_line_hash"
    # Only planned statements this size: compiling them cost more than running them.
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("SET LOCAL work_mem = '256MB'")
    inserted_columns = (
        "customer_id, email, first_name, last_name, attributes, field_origins, created_at,"
        f" updated_at{hash_column}"
    )
    inserted_values = (
        "customer_id, email, first_name, last_name, attributes, %(origins)s::jsonb, now(),"
        f" now(){hash_value}"
    )

    def upsert(rows: str) -> str:
        return f"""
            INSERT INTO {table} ({inserted_columns})
            SELECT {inserted_values} FROM changed {rows}
            ON CONFLICT (customer_id) DO UPDATE
            SET {set_columns} attributes = {merged}{stamped}, updated_at = now()
            WHERE ({compared}) IS DISTINCT FROM ({proposed})
            RETURNING customer_id, (xmax = 0) AS created"""

    def statement(written: str) -> str:
        return f"""
            WITH changed AS (
                SELECT staged.customer_id, staged.email, staged.first_name, staged.last_name,
                       staged.attributes{hash_value}, profile.id IS NULL AS new
                FROM {STAGING_TABLE} staged
                {profiles}
                WHERE profile.id IS NULL OR NOT ({unchanged})
            ), {written}
            {_PER_CUSTOMER if outcomes else _COUNTS}"""

    parameters = {"columns": attribute_columns, "origins": origins}
    # New profiles by a plain INSERT: ON CONFLICT's speculative insertion costs a fourth more
    # per row. A profile another writer made since the statement's snapshot makes it fail on
    # the customer id: it is then undone (a savepoint) and every row goes through the upsert.
    try:
        with transaction.atomic():
            cursor.execute(
                statement(
                    f"""inserted AS (
                        INSERT INTO {table} ({inserted_columns})
                        SELECT {inserted_values} FROM changed WHERE new
                        RETURNING customer_id, true AS created
                    ), updated AS ({upsert("WHERE NOT new")}
                    ), upserted AS (SELECT * FROM inserted UNION ALL SELECT * FROM updated)"""
                ),
                parameters,
            )
            written = cursor.fetchall()
    except IntegrityError:
        cursor.execute(statement(f"upserted AS ({upsert('')})"), parameters)
        written = cursor.fetchall()
    if outcomes:
        return written
    created, updated = written[0]
    return created, updated


#: Below this many staged rows per page of the profile table, profiles are looked up by the
#: index rather than by hashing the table (a page holds about 14 profiles of the demo's).
_INDEX_ROWS_PER_PAGE = 4


def _pages(cursor, table: str) -> int:
    """The table's size in pages, as it is now (its statistics can be far behind a bulk load)."""
    cursor.execute("SELECT pg_relation_size(%s) / current_setting('block_size')::int", [table])
    return cursor.fetchone()[0]


_COUNTS = (
    "SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM upserted"
)
_PER_CUSTOMER = f"""
    SELECT staged.customer_id, upserted.created
    FROM {STAGING_TABLE} staged LEFT JOIN upserted USING (customer_id)"""


def hashed_rows(cursor) -> tuple[int, int]:
    """How many rows are staged, and how many of them have a line hash."""
    cursor.execute(f"SELECT count(*), count(line_hash) FROM {STAGING_TABLE}")
    return cursor.fetchone()


def store_line_hashes(cursor) -> None:
    """Keep each staged row's line hash on its profile that has none and that the upsert did
    not write (the row changed nothing: a file imported before hashes were kept, or a
    profile made what the line says by another way): written once, the hash alone, not
    ``updated_at``. A profile with another line's hash (from a file with other columns)
    keeps it: rewriting it on every import of each file would write unchanged rows."""
    table = Profile._meta.db_table
    cursor.execute(
        f"UPDATE {table} profile SET import_line_hash = staged.line_hash"
        f" FROM {STAGING_TABLE} staged WHERE profile.customer_id = staged.customer_id"
        " AND staged.line_hash IS NOT NULL"
        " AND profile.import_line_hash IS NULL"
    )


def drop_staging(cursor, *, unchanged: bool = False) -> None:
    cursor.execute(f"DROP TABLE {STAGING_TABLE}")
    if unchanged:
        cursor.execute(f"DROP TABLE {UNCHANGED_TABLE}")
