"""Execute one export run.

The run is claimed by one worker (a token on the row), its recipients are computed once in SQL,
then pushed in the destination's batch size with bounded concurrency. After every acknowledged
batch the counts, the failures and the checkpoint (the position up to which every batch was
acknowledged) are saved in one transaction, together with a heartbeat. A run whose heartbeat
stops is claimed again by the sweeper and resumes after its checkpoint, so at most the batches
that were in flight are sent twice (the destinations upsert, so a repeat is harmless).
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from connections.services import backend_for, connection_record_error
from connections.types.base import (
    AuthExpired,
    Backend,
    BackendError,
    PushResult,
    RateLimited,
    Record,
    RecordFailure,
    Transient,
)
from exports import messages, runs
from exports.models import ExportRun, ExportRunFailure, ExportRunRecipient
from exports.ratelimit import RateLimiter
from exports.recipients import RecipientReader, build_recipients
from segments.models import Segment

logger = logging.getLogger(__name__)
Status = ExportRun.Status


class RunLost(Exception):
    """Another worker claimed the run: this one must stop without touching it."""


class RunCancelled(Exception):
    """Someone asked the run to stop."""


@dataclass
class Batch:
    first: int
    last: int
    records: list[Record]
    customer_ids: dict[str, str]


@dataclass
class Progress:
    """What acknowledged batches beyond the checkpoint hold, until the checkpoint reaches them."""

    checkpoint: int
    sent: int = 0
    failed: int = 0
    failures: list[ExportRunFailure] = field(default_factory=list)
    waiting: dict[int, tuple[Batch, PushResult]] = field(default_factory=dict)

    def acknowledge(self, run: ExportRun, batch: Batch, result: PushResult) -> bool:
        """Record a batch; return True when the checkpoint moved."""
        self.waiting[batch.first] = (batch, result)
        moved = False
        while (self.checkpoint + 1) in self.waiting:
            batch, result = self.waiting.pop(self.checkpoint + 1)
            failed_emails = {failure.email.strip().lower() for failure in result.failures}
            self.failed += len(failed_emails)
            self.sent += len(batch.records) - len(failed_emails)
            self.failures.extend(_failure_rows(run, batch, result.failures))
            self.checkpoint = batch.last
            moved = True
        return moved


def execute(run_id: int) -> ExportRun | None:
    """Claim and execute a run; return it, or None when another worker owns it or it ended."""
    token = uuid.uuid4().hex
    run = _claim(run_id, token)
    if run is None:
        return None
    try:
        _execute(run, token)
    except RunLost:
        logger.warning("Export run %s was claimed by another worker; this one stops", run_id)
        return None
    except RunCancelled:
        _finish(run, token, Status.CANCELLED)
    except BackendError as error:
        if error.permanent and run.export.connection_id:
            connection_record_error(connection_id=run.export.connection_id, error=error)
        _finish(run, token, Status.FAILED, last_error=messages.for_error(error))
    except Exception:
        logger.exception("Export run %s stopped on an unexpected error", run_id)
        _finish(run, token, Status.FAILED, last_error=str(messages.UNEXPECTED))
    run.refresh_from_db()
    return run


def _claim(run_id: int, token: str) -> ExportRun | None:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.EXPORT_STALLED_AFTER_SECONDS)
    claimed = ExportRun.objects.filter(
        Q(status=Status.QUEUED) | Q(status=Status.RUNNING, heartbeat_at__lt=stale), pk=run_id
    ).update(
        status=Status.RUNNING,
        worker_token=token,
        heartbeat_at=now,
        started_at=Coalesce(F("started_at"), now),
    )
    if not claimed:
        return None
    return ExportRun.objects.select_related("export__connection").get(pk=run_id)


def _execute(run: ExportRun, token: str) -> None:
    export = run.export
    if run.cancel_requested:
        raise RunCancelled
    if export.connection is None:
        _finish(run, token, Status.FAILED, last_error=str(messages.NO_CONNECTION))
        return
    unusable = export.segments.exclude(status=Segment.Status.ACTIVE).first()
    if unusable is not None:
        _finish(run, token, Status.SKIPPED, last_error=messages.segment_not_ready(unusable))
        return
    backend = backend_for(export.connection)
    if not run.recipients_ready:
        counts = build_recipients(run)
        _save(
            run,
            token,
            profiles_total=counts.members,
            to_send=counts.recipients,
            skipped=counts.skipped,
            recipients_ready=True,
        )
    limit = backend.max_profiles
    if limit and run.to_send > limit:
        _finish(
            run, token, Status.FAILED, last_error=messages.over_limit(run.to_send, limit, backend)
        )
        return
    backend.prepare(export.list_id, [])
    _push_all(run, token, backend)
    status = Status.SUCCEEDED if not (run.failed or run.skipped) else Status.COMPLETED_WITH_WARNINGS
    _finish(run, token, status)


def _push_all(run: ExportRun, token: str, backend: Backend) -> None:
    export = run.export
    limiter = RateLimiter(f"connection:{export.connection_id}", backend.rate_limit)
    stop = threading.Event()
    progress = Progress(checkpoint=run.checkpoint, sent=run.sent, failed=run.failed)
    pending: dict[Future, Batch] = {}
    next_position = run.checkpoint
    exhausted = False
    concurrency = max(1, settings.EXPORT_CONCURRENCY)
    reader = RecipientReader(run, backend.batch_size)
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix=f"export-run-{run.pk}")
    try:
        while True:
            while not exhausted and len(pending) < concurrency:
                batch = _next_batch(reader, next_position)
                if batch is None:
                    exhausted = True
                    break
                next_position = batch.last
                future = pool.submit(
                    _push_with_retries, backend, export.list_id, batch, limiter, stop
                )
                pending[future] = batch
            if not pending:
                return
            finished, _still_running = wait(
                pending, timeout=settings.EXPORT_HEARTBEAT_SECONDS, return_when=FIRST_COMPLETED
            )
            moved = False
            for future in finished:
                batch = pending.pop(future)
                moved |= progress.acknowledge(run, batch, future.result())
            if moved:
                _save_progress(run, token, progress)
            else:
                _save(run, token)  # a heartbeat while batches wait for the service
            if run.cancel_requested:
                raise RunCancelled
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _next_batch(reader: RecipientReader, after: int) -> Batch | None:
    rows = reader.page(after)
    if not rows:
        return None
    return Batch(
        first=rows[0][0],
        last=rows[-1][0],
        records=[
            Record(email, first_name, last_name) for _p, email, _c, first_name, last_name in rows
        ],
        customer_ids={email: customer_id for _p, email, customer_id, _f, _l in rows},
    )


def _push_with_retries(
    backend: Backend, list_id: str, batch: Batch, limiter: RateLimiter, stop: threading.Event
) -> PushResult:
    """Push one batch, waiting out rate limits and retrying transient errors with backoff.

    Waiting for a rate limit does not use up the retry budget. Runs in a pool thread.
    """
    attempt = 0
    rate_limited_for = 0.0
    try:
        while True:
            if stop.is_set():
                raise RunCancelled
            limiter.acquire(stopped=stop.is_set)
            try:
                return backend.push(list_id, batch.records)
            except RateLimited as error:
                wait_for = error.wait if error.hinted else _backoff(min(attempt + 1, 6))
                rate_limited_for += wait_for
                if rate_limited_for > settings.EXPORT_MAX_RATE_LIMIT_WAIT_SECONDS:
                    raise Transient(str(messages.RATE_LIMITED_TOO_LONG)) from error
                stop.wait(wait_for)
            except (Transient, AuthExpired) as error:
                attempt += 1
                if attempt > settings.EXPORT_MAX_RETRIES:
                    raise
                logger.info("Batch %s-%s: %s; retry %s", batch.first, batch.last, error, attempt)
                stop.wait(_backoff(attempt))
    finally:
        if db_connection.connection is not None:  # a token refresh used the database here
            db_connection.close()


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter."""
    ceiling = min(
        settings.EXPORT_BACKOFF_MAX_SECONDS, settings.EXPORT_BACKOFF_BASE_SECONDS * 2**attempt
    )
    return random.uniform(ceiling / 2, ceiling)


def _failure_rows(
    run: ExportRun, batch: Batch, failures: list[RecordFailure]
) -> list[ExportRunFailure]:
    return [
        ExportRunFailure(
            run=run,
            email=failure.email[:320],
            customer_id=batch.customer_ids.get(failure.email.strip().lower(), ""),
            code=str(failure.code)[:50],
            reason=failure.message,
        )
        for failure in failures
    ]


def _save_progress(run: ExportRun, token: str, progress: Progress) -> None:
    with transaction.atomic():
        _save(
            run, token, sent=progress.sent, failed=progress.failed, checkpoint=progress.checkpoint
        )
        ExportRunFailure.objects.bulk_create(progress.failures)
    progress.failures.clear()


def _save(run: ExportRun, token: str, **fields) -> None:
    """Update the run if this worker still owns it (else raise RunLost), with a heartbeat, and
    read back whether someone asked it to stop: one statement per acknowledged batch."""
    fields["heartbeat_at"] = timezone.now()
    assignments = ", ".join(f"{ExportRun._meta.get_field(name).column} = %s" for name in fields)
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ExportRun._meta.db_table} SET {assignments} "
            "WHERE id = %s AND worker_token = %s AND status = %s RETURNING cancel_requested",
            (*fields.values(), run.pk, token, Status.RUNNING),
        )
        row = cursor.fetchone()
    if row is None:
        raise RunLost
    for name, value in fields.items():
        setattr(run, name, value)
    run.cancel_requested = bool(row[0])


def _finish(run: ExportRun, token: str, status: str, **fields) -> None:
    owned = ExportRun.objects.filter(pk=run.pk, worker_token=token)
    if not owned.exists():
        return
    runs.transition(run, status, **fields)
    ExportRunRecipient.objects.filter(run=run).delete()
    logger.info("Export run %s finished: %s", run.pk, status)
