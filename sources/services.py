"""Writes on sources, and their runs: a source's rows streamed into the profiles.

Secrets are decrypted only here. They are never returned to a view, logged or passed to a task:
tasks get a run id.

A run reads the source a batch at a time (``SOURCE_BATCH_ROWS``) and converts it column by
column (``_staged_batch``), a batch ahead in a thread of its own (``sources.reading``), and
stores it through the CSV import's checks and set-based upsert
(``segments.importing.import_columns``; a batch expected new is copied straight into the
profiles, else its new profiles are inserted apart first, ``sources.storing``): only profiles
that change are written. Each batch is
committed together with the run's counts and, in incremental mode, the source's cursor, so a
run that dies (a killed worker, a source that disappears) loses nothing committed and the next
run (or the same one, redelivered) resumes from the last committed cursor.

A full sync of a database reads in customer id order and commits, with each batch, the
batch's last customer id (``SourceRun.key_after``) and, with "remove missing profiles", the
customer ids read (``SourceKey`` rows stamped with the run; ``sources.keys`` says where they
are kept otherwise). A full run that dies is gone on with after that key: by the same run when
its task is redelivered, else by the next run, which takes over the dead run's keys and counts.
So "remove missing profiles" still judges on every row of the whole reading. A file (a kind
that does not ``orders_by_key``) is read again from the start instead.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

import audit
from audit.actions import AuditAction
from config.translation import LaterText, stored
from config.translation import gettext_later as _
from core import crypto
from segments import tasks as segment_tasks
from segments.catalogue import TooManyFields
from segments.importing import (
    FIXED_COLUMNS,
    MAX_LISTED_REJECTIONS,
    MAX_LISTED_WARNINGS,
    import_columns,
)
from segments.models import Profile
from segments.staging import StagedRows
from sources import keys, reading, storing
from sources.kinds import registry
from sources.kinds.base import (
    Column,
    Problems,
    Read,
    SourceError,
    SourceKind,
    SourceUnchanged,
    StepResult,
    cursor_from_json,
    cursor_to_json,
    json_column,
    text_column,
)
from sources.models import FieldOrigin, Source, SourceKey, SourceRun
from sources.versions import version_keep, version_take

logger = logging.getLogger(__name__)


class SourceAlreadyRunning(Exception):
    """A run of this source is queued, running or waiting for approval to remove profiles
    (``run``); a second one is not started."""

    def __init__(self, run: SourceRun):
        super().__init__(run.pk)
        self.run = run

    @property
    def message(self) -> LaterText:
        """Why no run starts now, for the person who asked for one."""
        if self.run.status == SourceRun.Status.AWAITING_APPROVAL:
            return _(
                "Run #%(run)s of this source is waiting for approval to remove profiles. "
                "Approve or decline the removal on that run's page first."
            ) % {"run": self.run.pk}
        return _("This source is already running.")

    @property
    def skip_reason(self) -> LaterText:
        """Why the scheduled run was skipped, as its record says."""
        if self.run.status == SourceRun.Status.AWAITING_APPROVAL:
            return _("Skipped: waiting for approval of run #%(run)s.") % {"run": self.run.pk}
        return _("Skipped: run #%(run)s of this source was still running.") % {"run": self.run.pk}


class RemovalNotAwaited(Exception):
    """The run is not waiting for approval to remove profiles."""


# Sources --------------------------------------------------------------------------------------


@sensitive_variables("secrets")
def kind_for(source: Source, *, secrets: dict[str, Any] | None = None) -> SourceKind:
    """The source's kind, built with its settings and decrypted secrets (or ``secrets``, for a
    form being tested before it is saved)."""
    if secrets is None:
        secrets = crypto.decrypt_json(source.encrypted_secrets)
    return registry.kind_class(source.kind)(dict(source.connection_settings), secrets)


def read_of(source: Source, *, after: Any = None) -> Read:
    return Read(
        table=source.read_table,
        query=source.read_query,
        cursor_column=source.cursor_column
        if source.sync_mode == Source.SyncMode.INCREMENTAL
        else "",
        after=after,
    )


@sensitive_variables("password")
def source_save(
    *,
    source: Source | None = None,
    name: str,
    kind: str,
    connection_settings: dict[str, Any],
    password: str | None = None,
    read_table: str = "",
    read_query: str = "",
    mapping: dict[str, Any],
    field_types: dict[str, str] | None = None,
    sync_mode: str = Source.SyncMode.FULL,
    cursor_column: str = "",
    remove_missing: bool = False,
    on_schedule: bool = True,
    user=None,
) -> Source:
    """Create or change a source. ``password`` None keeps the stored one (it is never shown
    again); a new one replaces it. Changing what is read, or the cursor column, starts the
    next incremental run from the beginning; changing what is read, the customer id column or
    the sync mode makes the next full run read from the start rather than go on with the
    reading of one that died."""
    creating = source is None
    if source is None:
        source = Source(kind=kind, created_by=user)
    before = audit.snapshot(source) if not creating else None
    restart = creating or (
        source.read_table != read_table
        or source.read_query != read_query
        or source.cursor_column != cursor_column
        or source.kind != kind
    )
    removing = remove_missing and sync_mode == Source.SyncMode.FULL
    starts_removing = removing and not creating and not source.remove_missing
    # A full reading that died is gone on with only while the same key column is read the
    # same way, and its ids were recorded the same way (``sources.keys``).
    key_changed = restart or (
        (source.mapping or {}).get("customer_id") != (mapping or {}).get("customer_id")
        or source.sync_mode != sync_mode
        or source.remove_missing != removing
    )
    source.name = name
    source.kind = kind
    kind_class = registry.kind_class(kind)
    source.connection_settings = {
        key: value for key, value in connection_settings.items() if key in kind_class.setting_names
    }
    source.read_table = read_table
    source.read_query = read_query
    source.mapping = mapping
    source.field_types = field_types or {}
    source.sync_mode = sync_mode
    source.cursor_column = cursor_column
    source.remove_missing = removing
    source.on_schedule = on_schedule
    if restart:
        source.cursor_value = None
    source.file_version = None  # what the rows become may have changed: the next run reads all
    with transaction.atomic():
        if key_changed and source.pk:
            SourceRun.objects.filter(source=source, key_after__isnull=False).update(key_after=None)
        if password is not None and kind_class.secret_names:
            source.encrypted_secrets = crypto.encrypt_json({"password": password})
        source.save()
        if starts_removing and not creating:
            keys.seed_keys(source)
        if creating:
            audit.record(AuditAction.SOURCE_CREATED, source)
        else:
            audit.record(AuditAction.SOURCE_UPDATED, source, before=before)
    return source


def source_delete(*, source: Source) -> None:
    with transaction.atomic():
        audit.record(AuditAction.SOURCE_DELETED, source, after=None)
        source.delete()


def source_test(source: Source, *, secrets: dict[str, Any] | None = None) -> list[StepResult]:
    """The connection test's named steps, ending with reading what the source reads."""
    return kind_for(source, secrets=secrets).test(read_of(source))


def source_columns(source: Source, *, secrets: dict[str, Any] | None = None) -> list[Column]:
    return kind_for(source, secrets=secrets).columns(read_of(source))


def source_preview(
    source: Source, *, secrets: dict[str, Any] | None = None
) -> tuple[list[Column], list[tuple]]:
    return kind_for(source, secrets=secrets).preview(read_of(source))


# Runs -----------------------------------------------------------------------------------------


def run_request(*, source: Source, trigger: str = SourceRun.Trigger.MANUAL, user=None) -> SourceRun:
    """Queue a run of the source; raises ``SourceAlreadyRunning`` when one is queued, running
    or waiting for approval to remove profiles (never two runs of one source at once: a unique
    constraint holds it too)."""
    from sources import tasks

    with transaction.atomic():
        Source.objects.select_for_update().filter(pk=source.pk).first()
        _refuse_while_running(source)
        run = SourceRun.objects.create(
            source=source, trigger=trigger, sync_mode=source.sync_mode, created_by=user
        )
        audit.record(
            AuditAction.SOURCE_RUN_STARTED,
            source,
            after={"run": run.pk, "trigger": trigger},
        )
        transaction.on_commit(lambda: tasks.run_source.delay(run.pk))
    return run


def sources_run_scheduled() -> dict[str, int]:
    """The first step of the scheduled refresh: run every source on the schedule, one after
    the other, in this process (segments refresh after, on what the sources wrote). A source
    with a run still running or waiting for approval is not read: a skipped run records why."""
    succeeded = failed = skipped = 0
    for source in Source.objects.filter(on_schedule=True).order_by("name", "id"):
        try:
            run = run_request_now(source=source)
        except SourceAlreadyRunning as busy:
            _record_skipped(source, busy.skip_reason)
            skipped += 1
            continue
        if run.status == SourceRun.Status.FAILED:
            failed += 1
        else:
            succeeded += 1
    return {"sources_run": succeeded, "sources_failed": failed, "sources_skipped": skipped}


def _record_skipped(source: Source, reason: LaterText) -> SourceRun:
    now = timezone.now()
    return SourceRun.objects.create(
        source=source,
        trigger=SourceRun.Trigger.SCHEDULE,
        sync_mode=source.sync_mode,
        status=SourceRun.Status.SKIPPED,
        error=stored(reason),
        started_at=now,
        finished_at=now,
    )


def run_request_now(*, source: Source, trigger: str = SourceRun.Trigger.SCHEDULE) -> SourceRun:
    """Create a run and execute it here (the refresh chain waits for its sources)."""
    with transaction.atomic():
        Source.objects.select_for_update().filter(pk=source.pk).first()
        _refuse_while_running(source)
        run = SourceRun.objects.create(source=source, trigger=trigger, sync_mode=source.sync_mode)
    return run_execute(run_id=run.pk)


def _refuse_while_running(source: Source) -> None:
    """Raise ``SourceAlreadyRunning`` while a run of the source is queued, running or waiting
    for approval to remove profiles. A run marked running that no process holds (its worker
    was killed) is closed as interrupted: the new run goes on from the last committed cursor."""
    for active in SourceRun.objects.filter(source=source, status__in=SourceRun.BLOCKING):
        if active.status == SourceRun.Status.RUNNING and _nobody_runs(active.pk):
            _finish(
                active,
                SourceRun.Status.FAILED,
                _(
                    "The run was interrupted (its worker stopped). The next run goes on from "
                    "the last committed cursor."
                ),
            )
            continue
        raise SourceAlreadyRunning(active)


def _nobody_runs(run_id: int) -> bool:
    if connection.vendor != "postgresql":
        return False
    with _run_lock(run_id) as acquired:
        return acquired


@contextmanager
def _run_lock(run_id: int) -> Iterator[bool]:
    """Whether this process may execute the run: on PostgreSQL a session advisory lock, let go
    when the worker's connection closes (so a killed worker frees it)."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = zlib.crc32(b"sources.run") & 0x7FFFFFFF
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, run_id])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [key, run_id])


def run_execute(*, run_id: int) -> SourceRun:
    """Execute a queued run, or resume a running one whose worker died (its task redelivered):
    it goes on from the source's last committed cursor."""
    with _run_lock(run_id) as acquired:
        run = SourceRun.objects.select_related("source").get(pk=run_id)
        if not acquired or run.status not in SourceRun.ACTIVE:
            return run
        resuming = run.status == SourceRun.Status.RUNNING
        by_key = (
            run.source.sync_mode == Source.SyncMode.FULL
            and registry.kind_class(run.source.kind).orders_by_key
        )
        if resuming and not by_key:  # rows read before the kill are read again: not duplicates
            SourceKey.objects.filter(source_id=run.source_id, run=run).update(run=None)
            if run.source.sync_mode == Source.SyncMode.FULL:  # a file: all of it, again
                _restart_counts(run)
        if not resuming and by_key:
            _go_on_from_dead_run(run)
        run.status = SourceRun.Status.RUNNING
        run.started_at = run.started_at or timezone.now()
        if not resuming:
            run.cursor_start = run.source.cursor_value
        run.save(update_fields=["status", "started_at", "cursor_start"])
        try:
            with keys.run_keys(run):
                _read_into_profiles(run)
        except SourceUnchanged as unchanged:
            version_keep(run.source, unchanged.version)
            return _finish(run, SourceRun.Status.FILE_UNCHANGED)
        except SourceError as error:
            return _finish(run, SourceRun.Status.FAILED, error.message)
        except TooManyFields as error:
            return _finish(run, SourceRun.Status.FAILED, str(error))
        except DatabaseError as error:
            logger.exception("Source run %s failed", run_id)
            return _finish(
                run,
                SourceRun.Status.FAILED,
                _("The run failed in our database: %(error)s") % {"error": type(error).__name__},
            )
        return _conclude(run)


#: What a run that goes on with a dead full run's reading takes over from it.
_CARRIED_OVER = (
    "rows_read",
    "created_count",
    "updated_count",
    "unchanged_count",
    "rejected_count",
    "rejected_rows",
    "warning_count",
    "warnings",
    "key_after",
)


def _restart_counts(run: SourceRun) -> None:
    """A full reading read again from the start reports from the start."""
    for name in ("rows_read", "created_count", "updated_count", "unchanged_count"):
        setattr(run, name, 0)
    run.rejected_count = run.warning_count = 0
    run.rejected_rows, run.warnings = [], []
    run.save()


def _go_on_from_dead_run(run: SourceRun) -> None:
    """When the source's latest run was a full reading that died (failed with a committed
    key), ``run`` goes on after its last key: it takes over its counts, its report and the
    keys it read (one statement), so the removal of missing profiles sees the whole reading."""
    dead = (
        SourceRun.objects.filter(source_id=run.source_id, pk__lt=run.pk)
        .exclude(status=SourceRun.Status.SKIPPED)
        .order_by("-pk")
        .first()
    )
    if (
        dead is None
        or dead.status != SourceRun.Status.FAILED
        or dead.key_after is None
        or dead.sync_mode != Source.SyncMode.FULL
    ):
        return
    with transaction.atomic():
        SourceKey.objects.filter(source_id=run.source_id, run=dead).update(run=run)
        for name in _CARRIED_OVER:
            setattr(run, name, getattr(dead, name))
        run.resumed_from = dead
        run.save(update_fields=[*_CARRIED_OVER, "resumed_from"])
        dead.key_after = None
        dead.save(update_fields=["key_after"])


def _finish(run: SourceRun, status: str, error: LaterText | str = "") -> SourceRun:
    run.status = status
    run.error = stored(error) if error else ""
    run.finished_at = timezone.now()
    run.save()
    source = run.source
    source.status = (
        Source.Status.FAILING if status == SourceRun.Status.FAILED else Source.Status.HEALTHY
    )
    source.last_error = run.error
    source.last_run_at = run.finished_at
    source.save(update_fields=["status", "last_error", "last_run_at"])
    return run


class _Mapping:
    """Where each mapped field is among the columns read, and the type its values become."""

    def __init__(self, source: Source, columns: list[Column]):
        positions = {column.name: index for index, column in enumerate(columns)}
        mapping = source.mapping or {}
        wanted: dict[str, str] = {
            name: mapping[name] for name in FIXED_COLUMNS if mapping.get(name)
        }
        attributes: dict[str, str] = dict(mapping.get("attributes") or {})
        if "customer_id" not in wanted:
            raise SourceError(_("Map a column to the customer id before running the source."))
        missing = [
            column for column in [*wanted.values(), *attributes.values()] if column not in positions
        ]
        if missing:
            raise SourceError(
                _(
                    "The source no longer has the column “%(column)s” that the mapping uses. "
                    "Edit the source's mapping."
                )
                % {"column": missing[0]}
            )
        self.fixed = {name: positions[column] for name, column in wanted.items()}
        self.attributes = [
            (name, positions[column], columns[positions[column]].field_type, column)
            for name, column in attributes.items()
        ]
        self.attribute_types = {name: field_type for name, _i, field_type, _c in self.attributes}
        self.fields = [name for name in FIXED_COLUMNS if name in self.fixed]


def _mapped_columns(source: Source) -> tuple[str, ...]:
    """The columns a run reads: the mapped ones and the cursor column (reading the others
    was a tenth of the time PyMySQL takes to hand over a row of the bench's table)."""
    mapping = source.mapping or {}
    names = [mapping[name] for name in FIXED_COLUMNS if mapping.get(name)]
    names += (mapping.get("attributes") or {}).values()
    if source.sync_mode == Source.SyncMode.INCREMENTAL and source.cursor_column:
        names.append(source.cursor_column)
    return tuple(dict.fromkeys(names))


def _staged_batch(
    rows: list[tuple], first_line: int, mapping: _Mapping
) -> tuple[StagedRows, list[str], list[dict]]:
    """The batch's rows as the staging table's columns (``StagedRows``), converted column by
    column from their source types (a row is looked at on its own only when its column has a
    value that does not fit); each row's key (its customer id as read, "" when it cannot be
    one) by index; and the rows rejected, each with its line, key and the first reason (its
    fixed fields first, then its attributes, in the mapping's order)."""
    count = len(rows)
    lines = list(range(first_line, first_line + count))
    fixed: dict[str, list[str]] = {}
    row_keys: list[str] = []
    problems: list[Problems] = []
    for name, index in mapping.fixed.items():
        texts, found = text_column(list(map(itemgetter(index), rows)))
        if name == "customer_id":
            row_keys = list(texts)
            for row in found:
                row_keys[row] = ""
        fixed[name] = list(map(str.strip, texts))
        problems.append(found)
    entries: list[list[str]] = []
    gaps = False
    for name, index, field_type, column in mapping.attributes:
        values, has_gaps, found = json_column(
            list(map(itemgetter(index), rows)), field_type, encode_basestring(name) + ": "
        )
        entries.append(values)
        gaps = gaps or has_gaps
        problems.append(
            {
                row: _("The column “%(column)s” does not fit the field “%(field)s”: %(reason)s")
                % {"column": column, "field": name, "reason": reason}
                for row, reason in found.items()
            }
        )
    reasons: Problems = {}
    for found in problems:
        for row, reason in found.items():
            reasons.setdefault(row, reason)
    rejected = [
        {"line": lines[row], "key": row_keys[row], "reason": stored(reasons[row])}
        for row in sorted(reasons)
    ]
    blank = [""] * count
    columns = [fixed.get(name, blank) for name in FIXED_COLUMNS]
    if reasons:
        kept = [row for row in range(count) if row not in reasons]
        lines = [lines[row] for row in kept]
        columns = [[column[row] for row in kept] for column in columns]
        entries = [[column[row] for row in kept] for column in entries]
    return StagedRows(lines, *columns, entries, gaps), row_keys, rejected


@dataclass
class _ConvertedBatch:
    """A batch read and converted (``_staged_batch``), with what its commit records: how many
    rows were read, and the last cursor value and key read (None when none)."""

    mapping: _Mapping
    staged: StagedRows
    row_keys: list[str]
    rejected: list[dict]
    rows_read: int
    last_cursor: Any
    last_key: Any


def _converted_batches(
    kind: SourceKind, read: Read, source: Source, *, first_line: int
) -> Iterator[_ConvertedBatch]:
    """The source's batches as the run stores them; runs in the reading thread
    (``sources.reading``): it touches no database of ours."""
    mapping: _Mapping | None = None
    cursor_index = key_index = None
    line = first_line
    for columns, rows in kind.batches(read, settings.SOURCE_BATCH_ROWS):
        if mapping is None:
            mapping = _Mapping(source, columns)
            if read.cursor_column:
                cursor_index = [column.name for column in columns].index(read.cursor_column)
            elif read.key_column:
                key_index = mapping.fixed["customer_id"]
        staged, row_keys, rejected = _staged_batch(rows, line, mapping)
        yield _ConvertedBatch(
            mapping,
            staged,
            row_keys,
            rejected,
            len(rows),
            _last_value(rows, cursor_index),
            _last_value(rows, key_index),
        )
        line += len(rows)


def _last_value(rows: list[tuple], index: int | None) -> Any:
    """The last value that is not None in the column ``index`` of ``rows``."""
    if index is None:
        return None
    return next((row[index] for row in reversed(rows) if row[index] is not None), None)


def _read_into_profiles(run: SourceRun) -> None:
    source = run.source
    incremental = source.sync_mode == Source.SyncMode.INCREMENTAL
    after = (
        cursor_from_json(source.cursor_value, settings.SOURCE_CURSOR_OVERLAP_SECONDS)
        if incremental
        else None
    )
    kind = kind_for(source)
    read = replace(
        read_of(source, after=after),
        unchanged_since=version_take(source),
        columns=_mapped_columns(source),
    )
    if not incremental and kind.orders_by_key:  # after the key a dead reading committed
        read = replace(
            read,
            key_column=(source.mapping or {}).get("customer_id") or "",
            after_key=cursor_from_json(run.key_after),
        )
    line = run.rows_read
    stamp = ""
    expect_new = True
    batches = _converted_batches(kind, read, source, first_line=line + 1)
    mapping: _Mapping | None = None
    with reading.read_ahead(batches) as converted:
        for batch in converted:
            if mapping is None:
                mapping = batch.mapping
                stamp = storing.origin_stamp(
                    source.pk, mapping.fields, list(mapping.attribute_types)
                )
            staged, row_keys, rejected = batch.staged, batch.row_keys, batch.rejected
            first_line = line + 1
            line += batch.rows_read
            with transaction.atomic():
                _commit_without_waiting()
                staged, repeated = _first_of_each_key(staged)
                inserted: list[int] = []
                on_staged = insert_new = None
                if connection.vendor == "postgresql":
                    on_staged = partial(
                        _on_staged, run, repeated, stamp if expect_new else None, inserted
                    )
                    if expect_new:
                        insert_new = partial(
                            storing.copy_new_profiles,
                            stamp,
                            remember_keys=partial(keys.remember_new_keys, run),
                        )
                else:  # the demo's SQLite: small files
                    staged, earlier = keys.without_earlier_keys(run, staged)
                    repeated += earlier
                report = import_columns(
                    staged,
                    mapping.attribute_types,
                    fields=mapping.fields,
                    recount_fields=False,
                    origin=source.pk,
                    on_staged=on_staged,
                    insert_new=insert_new,
                )
                rejected += sorted(repeated, key=itemgetter("line"))
                run.rows_read += batch.rows_read
                created = report.created + sum(inserted)
                # New profiles come in runs (a first reading, a range of new ids): inserted
                # apart while at least half a batch is new (``sources.storing``).
                expect_new = 2 * created >= len(staged)
                run.created_count += created
                run.updated_count += report.updated
                run.unchanged_count += report.unchanged
                rejected += [
                    {
                        "line": row.line,
                        "key": row_keys[row.line - first_line],
                        "reason": row.reason,
                    }
                    for row in report.rejected_rows
                ]
                run.rejected_count += report.rejected + len(rejected) - len(report.rejected_rows)
                room = MAX_LISTED_REJECTIONS - len(run.rejected_rows)
                run.rejected_rows = [*run.rejected_rows, *rejected[: max(room, 0)]]
                run.warning_count += report.warned
                room = MAX_LISTED_WARNINGS - len(run.warnings)
                run.warnings = [
                    *run.warnings,
                    *(vars(w) for w in report.warnings[: max(room, 0)]),
                ]
                if batch.last_cursor is not None:
                    source.cursor_value = run.cursor_end = cursor_to_json(batch.last_cursor)
                    source.save(update_fields=["cursor_value"])
                if batch.last_key is not None:
                    run.key_after = cursor_to_json(batch.last_key)
                run.save()
    if mapping is None:  # no row: the columns still have to be there
        mapping = _Mapping(source, kind.columns(Read(source.read_table, source.read_query)))
    if run.created_count or run.updated_count:  # an unchanged reading cannot change a count
        _recount_fields_later()
    _record_field_origins(run, mapping)
    version_keep(source, kind.read_version)
    if source.remove_missing and source.sync_mode == Source.SyncMode.FULL:
        _remove_missing(run)


def _on_staged(
    run: SourceRun, repeated: list[dict], stamp: str | None, inserted: list[int], cursor
) -> None:
    """A batch's rows are in the import's staging table: leave out the ids read earlier in
    the run (``sources.keys``), then, with ``stamp``, insert the new profiles apart
    (``sources.storing``; how many, in ``inserted``)."""
    keys.remember_staged_keys(run, repeated, cursor)
    if stamp is not None:
        storing.insert_new_profiles(stamp, inserted, cursor)


def _first_of_each_key(staged: StagedRows) -> tuple[StagedRows, list[dict]]:
    """The rows without the later ones of a customer id repeated in the batch, which are
    rejected and listed (which of two rows is right cannot be known). A row without a customer
    id is rejected by the import, with its own reason."""
    customer_ids, lines = staged.customer_ids, staged.lines
    first_lines = dict(zip(reversed(customer_ids), reversed(lines), strict=True))
    if len(first_lines) == len(customer_ids):  # the usual batch
        return staged, []
    kept, rejected = [], []
    for index, (customer_id, line) in enumerate(zip(customer_ids, lines, strict=True)):
        if not customer_id or first_lines[customer_id] == line:
            kept.append(index)
            continue
        reason = _("This customer id was already read in this run (line %(line)s).") % {
            "line": first_lines[customer_id]
        }
        rejected.append({"line": line, "key": customer_id, "reason": stored(reason)})
    return keys.rows_of(staged, kept), rejected


def _commit_without_waiting() -> None:
    """The batch's commit does not wait for the disk (PostgreSQL): a crash can lose the last
    batches, but never a batch's profiles without its counts, keys and cursor, or the other
    way round (they are one transaction), and a lost batch is read again by the next run.
    Waiting for each commit's flush was a sixth of a full sync."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def _recount_fields_later() -> None:
    """The field catalogue's counts, recounted by a task once the run's writes are committed
    (as after the API's upserts): a recount reads every profile, which an incremental run
    should not wait for (2.1 s of a 4.9 s run of 10,000 rows against 1,000,000 profiles)."""
    transaction.on_commit(segment_tasks.recount_fields.delay)


def _record_field_origins(run: SourceRun, mapping: _Mapping) -> None:
    """Each mapped field was last set by this source (the customer id is the key, not a
    field a source sets)."""
    names = [name for name in mapping.fields if name != "customer_id"]
    names += [name for name, _i, _t, _c in mapping.attributes]
    for name in names:
        FieldOrigin.objects.update_or_create(
            field_name=name, defaults={"source": run.source, "run": run}
        )


def _missing_keys(run: SourceRun):
    return SourceKey.objects.filter(source=run.source).filter(Q(run__isnull=True) | ~Q(run=run))


def _remove_missing(run: SourceRun) -> None:
    """Profiles this source gave before and no longer has: removed, or over the threshold the
    run waits for an administrator's approval (``run_approve_removal``)."""
    missing = _missing_keys(run)
    count = missing.count()
    if count > settings.SOURCE_REMOVAL_APPROVAL_THRESHOLD:
        run.removal_pending = count
        run.status = SourceRun.Status.AWAITING_APPROVAL
        run.save(update_fields=["removal_pending", "status"])
        return
    _delete_missing(run)


def _delete_missing(run: SourceRun) -> None:
    missing = _missing_keys(run)
    with transaction.atomic():
        _total, removed = Profile.objects.filter(
            customer_id__in=missing.values("customer_id")
        ).delete()
        run.removed_count = removed.get(Profile._meta.label, 0)
        missing.delete()
        if run.removed_count:
            _recount_fields_later()
        run.removal_pending = 0
        run.save(update_fields=["removed_count", "removal_pending"])


def _conclude(run: SourceRun) -> SourceRun:
    """End a run whose reading is complete (its progress key is no longer needed)."""
    if run.key_after is not None:
        run.key_after = None
        run.save(update_fields=["key_after"])
    if run.status == SourceRun.Status.AWAITING_APPROVAL:
        run.finished_at = None
        run.save(update_fields=["finished_at"])
        return run
    imported = run.created_count + run.updated_count + run.unchanged_count
    if run.rejected_count and not imported:
        return _finish(run, SourceRun.Status.FAILED, _("No row could be imported."))
    if run.rejected_count:
        return _finish(run, SourceRun.Status.COMPLETED_WITH_ERRORS)
    return _finish(run, SourceRun.Status.SUCCEEDED)


def run_approve_removal(*, run: SourceRun, approve: bool, user=None) -> SourceRun:
    """An administrator's answer to a run that waits to remove profiles: remove them, or keep
    them (the run then ends without removing any)."""
    if run.status != SourceRun.Status.AWAITING_APPROVAL:
        raise RemovalNotAwaited()
    audit.record(
        AuditAction.SOURCE_REMOVAL_APPROVED if approve else AuditAction.SOURCE_REMOVAL_DECLINED,
        run.source,
        after={"run": run.pk, "profiles": run.removal_pending},
    )
    if approve:
        _delete_missing(run)
    else:
        run.removal_pending = 0
    run.status = SourceRun.Status.RUNNING
    return _conclude(run)
