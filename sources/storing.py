"""A source's new profiles, written before the import's upsert (PostgreSQL).

A batch's checked rows are in the import's staging table (``segments.staging``) when
``insert_new_profiles`` runs (the import's ``on_staged``). The rows whose customer id has no
profile are inserted by a plain ``INSERT`` and taken out of the staging table; the upsert then
compares and writes the others. An ``INSERT ... ON CONFLICT`` costs a quarter more per row than
a plain one (PostgreSQL reserves each row before it checks the unique index): most of a first
full sync (measured: the README's "Sources, a full sync").

A profile another writer creates meanwhile (an import, the API) makes the ``INSERT`` fail on
the unique customer id: it is then undone (a savepoint) and the upsert writes every row, as
before.

A batch expected to be all new (a first reading) is first offered to ``copy_new_profiles``,
before anything is staged: one ``COPY`` straight into the profile table, which PostgreSQL
writes a page of rows at a time where ``INSERT ... SELECT`` writes each row on its own, and
which needs no staging table. A row that already has a profile (or whose id the run read
before) makes it fail as a whole; it is then undone and the batch goes the staged way.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, connection, transaction
from psycopg import errors

from segments import origins, staging
from segments.importing import FIXED_COLUMNS
from segments.models import Profile
from segments.staging import STAGING_TABLE, StagedRows


def origin_stamp(source_id: int, fields: list[str], attributes: list[str]) -> str:
    """The ``field_origins`` the import's upsert stamps on the profiles it writes for these
    mapped fields (``segments.importing._store``): the same here."""
    written = [name for name in FIXED_COLUMNS if name in fields and name != "customer_id"]
    return origins.stamp(source_id, [*written, *attributes])


def insert_new_profiles(stamp: str, created: list[int], cursor) -> None:
    """Insert the staged rows that have no profile, and take them out of the staging table;
    their number is appended to ``created``."""
    table = Profile._meta.db_table
    try:
        with transaction.atomic():
            # Each id looked up by the index (``OFFSET 0`` keeps the subquery apart), as the
            # upsert does for a batch small beside the table.
            cursor.execute(
                f"WITH new AS (DELETE FROM {STAGING_TABLE} staged WHERE NOT EXISTS (SELECT FROM"
                f" {table} profile WHERE profile.customer_id = staged.customer_id OFFSET 0)"
                " RETURNING customer_id, email, first_name, last_name, attributes)"
                f" INSERT INTO {table} (customer_id, email, first_name, last_name, attributes,"
                " field_origins, created_at, updated_at)"
                " SELECT customer_id, email, first_name, last_name, attributes, %s::jsonb,"
                " now(), now() FROM new",
                [stamp],
            )
            created.append(cursor.rowcount)
    except IntegrityError:
        return


def copy_new_profiles(
    stamp: str, rows: StagedRows, remember_keys: Callable[[list[str], object], bool]
) -> bool:
    """Insert ``rows`` as new profiles by one ``COPY``, and their ids by ``remember_keys``
    (False when the run read one of them before), in a savepoint; whether they were. When one
    already has a profile, or ``remember_keys`` refuses them, nothing is kept."""
    table = Profile._meta.db_table
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.cursor.copy(
                f"COPY {table} (customer_id, email, first_name, last_name, attributes,"
                " field_origins) FROM STDIN"
            ) as copy:
                copy.write(_profiles_copy_text(rows, stamp).encode())
            if not remember_keys(rows.customer_ids, cursor):
                raise _AlreadyRead()
    except (IntegrityError, errors.UniqueViolation, _AlreadyRead):
        return False
    return True


class _AlreadyRead(Exception):
    """An id of the batch was read earlier in the run: its savepoint is undone."""


def _profiles_copy_text(rows: StagedRows, stamp: str) -> str:
    """The rows in ``COPY``'s text format, each with ``stamp`` as its field origins."""
    return staging.profile_copy_text(rows, [], after="\t" + staging.escaped(stamp))
