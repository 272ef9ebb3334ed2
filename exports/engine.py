"""Execute one export run.

The run is claimed by one worker (a token on the row), its recipients are computed once in SQL,
then pushed in the destination's batch size with bounded concurrency. After every acknowledged
batch the counts, the failures and the checkpoint (the position up to which every batch was
acknowledged) are saved in one transaction, together with a heartbeat. A run whose heartbeat
stops is claimed again by the sweeper and resumes after its checkpoint, so at most the batches
that were in flight are sent twice (the destinations upsert, so a repeat is harmless).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import TypeVar

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from config.translation import stored
from connections.services import backend_for, connection_record_error
from connections.types.base import (
    AuthExpired,
    Backend,
    BackendError,
    ConsentState,
    FieldsNotFound,
    ListNotFound,
    PushResult,
    RateLimited,
    Record,
    RecordFailure,
    RecordWarning,
    Transient,
)
from core import coordination, logs
from exports import consent, guard, mapping, messages, runs, services, unchanged
from exports.inflight import INITIAL, InFlightLimit
from exports.models import Export, ExportRun, ExportRunFailure, Refusal, SyncState
from exports.ratelimit import RateLimiter
from exports.recipients import (
    ADD,
    REMOVE,
    RETURN,
    UPDATE,
    AcknowledgedAdds,
    RecipientTable,
    acknowledged_adds,
    analyze_sync_state,
    build_recipients,
    copy_skipped,
    record_opted_out,
    record_refusals,
    write_sync_state,
)
from exports.runs import RunLost
from segments.models import Segment

logger = logging.getLogger(__name__)
Status = ExportRun.Status
WaitingFor = ExportRun.WaitingFor
T = TypeVar("T")
OPTED_OUT = SyncState.State.OPTED_OUT
COUNTED = ExportRun.BATCH_COUNTS
STATISTICS_AFTER_ROWS = 10_000
SYNC_STATE_WRITES = 10


class RunCancelled(Exception):
    """Someone asked the run to stop."""


@dataclass
class Batch:
    """Consecutive recipients as read from the run's table, and the records sent for them."""

    # (position, email, customer id, first name, last name, action, fields hash, extras); the
    # action is "add", "update", "return" or "remove" (a batch never mixes removals with the
    # rest).
    rows: list[tuple]
    records: list[Record]
    # Leavers of a mirror export that takes its tags off them instead of removing them.
    untagging: bool = False
    # Warnings of the records found before sending (a consent value that is not yes or no).
    warnings: list[RecordWarning] = field(default_factory=list)
    # Seconds the service took for the attempt that succeeded (set by the pool thread).
    round_trip: float = 0.0

    @property
    def first(self) -> int:
        return self.rows[0][0]

    @property
    def last(self) -> int:
        return self.rows[-1][0]

    @property
    def removing(self) -> bool:
        return self.rows[0][5] == REMOVE


@dataclass
class Progress:
    """What acknowledged batches beyond the checkpoint hold, until the checkpoint reaches them.

    When the checkpoint passes a batch, its counts and failures are saved with it in one
    transaction (``_save_progress``). The sync state follows in bulk (``_sync``): everything
    up to the checkpoint except what the service refused is, by then, acknowledged.
    """

    run: ExportRun
    opted_out_codes: frozenset[str]
    checkpoint: int
    lasting_refusal_codes: frozenset[str] = frozenset()
    # What the opted-out codes stand for (``Backend.opted_out_states``), and the consent state
    # of each address found opted out, kept as a consent record with its sync state.
    opted_out_states: Mapping[str, str] = field(default_factory=dict)
    consent_states: dict[str, str] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    failures: list[ExportRunFailure] = field(default_factory=list)
    opted_out: list[SyncState] = field(default_factory=list)
    # Refusals that will not change by themselves: not sent again while the fields are these.
    refusals: list[Refusal] = field(default_factory=list)
    # The first positions of the batches sent, in order; positions are profile ids, not dense.
    in_flight: deque[int] = field(default_factory=deque)
    waiting: dict[int, tuple[Batch, PushResult]] = field(default_factory=dict)
    # The adds acknowledged from the checkpoint on, for the sync state (``BackgroundSync``).
    adds: AcknowledgedAdds | None = None

    def sending(self, batch: Batch) -> None:
        self.in_flight.append(batch.first)

    def acknowledge(self, batch: Batch, result: PushResult) -> bool:
        """Record a batch; return True when the checkpoint moved."""
        self.waiting[batch.first] = (batch, result)
        moved = False
        while self.in_flight and self.in_flight[0] in self.waiting:
            batch, result = self.waiting.pop(self.in_flight.popleft())
            self._count(batch, result)
            self.checkpoint = batch.last
            moved = True
        return moved

    def _count(self, batch: Batch, result: PushResult) -> None:
        if not result.failures:
            done = Counter(map(itemgetter(5), batch.rows))
        else:
            done = self._count_refused(batch, result.failures)
        opted_out = {email.strip().lower() for email in result.opted_out}
        if opted_out:
            self._remember_opted_out(
                batch,
                opted_out,
                {email.strip().lower(): state for email, state in result.opted_out_states.items()},
            )
        if self.adds is not None:
            refused = {failure.email.strip().lower() for failure in result.failures}
            self.adds.record(batch.rows, refused | opted_out)
        warnings = [*batch.warnings, *result.warnings]
        if batch.warnings and result.failures:
            failed = {failure.email.strip().lower() for failure in result.failures}
            warnings = [w for w in warnings if w.email.strip().lower() not in failed]
        if warnings:
            self.failures.extend(_warning_rows(self.run, batch, warnings))
            self.counts["warnings"] += len({warning.email for warning in warnings})
        self.counts["failed"] += len(batch.rows) - done.total()
        self.counts["removed"] += done[REMOVE]
        self.counts["updated"] += done[UPDATE]
        self.counts["added"] += done[ADD] + done[RETURN]
        self.counts["sent"] += done[ADD] + done[RETURN] + done[UPDATE]

    def _count_refused(self, batch: Batch, failures: list[RecordFailure]) -> Counter:
        """Keep the refusals, and the opted-out addresses among them; count the rest by action."""
        self.failures.extend(_failure_rows(self.run, batch, failures))
        refused = {failure.email.strip().lower(): failure for failure in failures}
        done: Counter[str] = Counter()
        for _position, email, _customer_id, _first, _last, action, fields_hash, *_ in batch.rows:
            failure = refused.get(email)
            if failure is None:
                done[action] += 1
            elif str(failure.code) in self.opted_out_codes:
                state = consent.state_for(str(failure.code), self.opted_out_states)
                self.opted_out.append(self._opted_out(email, fields_hash, state))
            elif str(failure.code) in self.lasting_refusal_codes and action != REMOVE:
                self.refusals.append(
                    Refusal(
                        export_id=self.run.export_id,
                        email=email,
                        fields_hash=fields_hash,
                        code=str(failure.code)[:50],
                        reason=stored(failure.message),
                        refused_by_id=self.run.pk,
                    )
                )
        return done

    def _remember_opted_out(self, batch: Batch, emails: set[str], states: dict[str, str]) -> None:
        """Addresses the service handled but holds as opted out: never sent again."""
        self.opted_out.extend(
            self._opted_out(email, fields_hash, states.get(email, ConsentState.UNSUBSCRIBED))
            for _position, email, _customer_id, _first, _last, _action, fields_hash, *_ in (
                batch.rows
            )
            if email in emails
        )

    def _opted_out(
        self, email: str, fields_hash: str, state: str = ConsentState.UNSUBSCRIBED
    ) -> SyncState:
        self.consent_states[email] = state
        return SyncState(
            export_id=self.run.export_id,
            email=email,
            fields_hash=fields_hash,
            state=OPTED_OUT,
            confirmed_by_id=self.run.pk,
        )

    def totals(self) -> dict[str, int]:
        return {name: getattr(self.run, name) + self.counts[name] for name in COUNTED}


class RecentRate:
    """Records delivered (sent, refused or removed) per second over the last ``WINDOW_SECONDS``,
    so that the time left follows the service when it slows down or speeds up."""

    WINDOW_SECONDS = 30.0

    def __init__(self, delivered: int):
        self.samples: deque[tuple[float, int]] = deque([(time.monotonic(), delivered)])

    def observe(self, delivered: int) -> float | None:
        now = time.monotonic()
        self.samples.append((now, delivered))
        # Keep the newest sample at least a window old: the rate spans the whole window.
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.WINDOW_SECONDS:
            self.samples.popleft()
        began, delivered_then = self.samples[0]
        if now - began < 1.0:
            return None
        return (delivered - delivered_then) / (now - began)


def _delivered(run: ExportRun, totals: dict[str, int] | None = None) -> int:
    totals = totals or {name: getattr(run, name) for name in COUNTED}
    return totals["sent"] + totals["failed"] + totals["removed"]


def _how_it_goes(run: ExportRun, recent: RecentRate, totals: dict[str, int] | None = None):
    """What a running run says besides its counts: why it waits, if it does, and its rate."""
    waiting = WaitingFor.REDIS if coordination.outage_seconds() is not None else WaitingFor.NOTHING
    return {"waiting_for": waiting, "recent_per_second": recent.observe(_delivered(run, totals))}


def execute(run_id: int) -> ExportRun | None:
    """Claim and execute a run; return it, or None when another worker owns it or it ended."""
    token = uuid.uuid4().hex
    stalled_before = timezone.now() - dt.timedelta(seconds=settings.EXPORT_STALLED_AFTER_SECONDS)
    run = runs.claim(run_id, token, stalled_before=stalled_before)
    if run is None:
        return None
    with logs.log_context(
        run_id=run.pk, export_id=run.export_id, connection_id=run.export.connection_id
    ):
        return _execute_claimed(run, token)


def _execute_claimed(run: ExportRun, token: str) -> ExportRun | None:
    run_id = run.pk
    try:
        _execute(run, token)
    except RunLost:
        logger.warning("Export run %s was claimed by another worker; this one stops", run_id)
        return None
    except RunCancelled:
        _finish(run, token, Status.CANCELLED)
    except BackendError as error:
        # A list gone from the service is the export's fault, not the connection's.
        blames_connection = error.permanent and not isinstance(error, ListNotFound)
        if blames_connection and run.export.connection_id:
            connection_record_error(connection_id=run.export.connection_id, error=error)
        _finish(run, token, Status.FAILED, last_error=messages.for_error(error))
    except Exception:
        logger.exception("Export run %s stopped on an unexpected error", run_id)
        _finish(run, token, Status.FAILED, last_error=messages.UNEXPECTED)
    run.refresh_from_db()
    return run


def _execute(run: ExportRun, token: str) -> None:
    export = run.export
    if run.cancel_requested:
        raise RunCancelled
    if export.connection is None:
        _finish(run, token, Status.FAILED, last_error=messages.NO_CONNECTION)
        return
    if not export.segments.exists():
        # Nothing to send, and in mirror mode everyone to remove: never what was meant.
        _finish(run, token, Status.SKIPPED, last_error=messages.NO_SEGMENTS)
        return
    unusable = export.segments.exclude(status=Segment.Status.ACTIVE).first()
    if unusable is not None:
        _finish(run, token, Status.SKIPPED, last_error=messages.segment_not_ready(unusable))
        return
    table = RecipientTable(run)
    lost = run.recipients_ready and not table.intact(run)
    if lost and run.approved and not run.checkpoint:
        # What someone approved went with the tables before anything was sent: the run
        # computes its recipients afresh and, if they still call for it, waits again.
        logger.warning(
            "Export run %s: its approved recipients were lost; computing them again", run.pk
        )
        runs.save(run, token, recipients_ready=False, approved=False)
    elif lost:
        # The database lost the members' table (it is unlogged: a crash empties it).
        # Positions are stable, so the table built again puts the checkpoint where it was.
        logger.warning("Export run %s: its recipients were lost; computing them again", run.pk)
        build_recipients(run)
    approved_limits = _approved_limits_if_changed(run, token)
    if not run.recipients_ready:
        fingerprint = unchanged.inputs_fingerprint(export)
        previous = unchanged.last_delivery_if_unchanged(run, fingerprint)
        if previous is not None:
            _finish_unchanged(run, token, previous)
            return
        runs.save(run, token, inputs_fingerprint=fingerprint)
        basis = unchanged.last_delivery(run)
        unchanged.computing_recipients(run)
        started = time.monotonic()
        counts = build_recipients(run, basis=basis)
        logger.info(
            "Export run %s: %s recipients of %s members in %.1fs",
            run.pk,
            counts.recipients,
            counts.members,
            time.monotonic() - started,
        )
        verdict = _guard_check(run, counts)
        computed = {
            "profiles_total": counts.members,
            "to_send": counts.recipients,
            "skipped": counts.skipped,
            "excluded": counts.excluded,
            "unchanged": counts.unchanged,
            "failed": counts.refused,
            "to_remove": counts.to_remove,
            "list_size": verdict.list_size,
            "to_add": verdict.adds,
            "recipients_ready": True,
        }
        grew = approved_limits is not None and (
            verdict.adds > approved_limits[0] or verdict.removals > approved_limits[1]
        )
        if verdict.holds and (not run.approved or grew):
            if run.approved:  # what it would do now is more than what someone approved
                computed["approved"] = False
                verdict = replace(verdict, reasons=(*verdict.reasons, messages.GREW_WHILE_WAITING))
            # In the same statement as the counts: a run resumed after a lost worker finds
            # its recipients ready only once it was held (or let through).
            _hold(run, token, verdict, computed)
            return
        runs.save(run, token, **computed)
    backend = backend_for(export.connection)
    limit = backend.max_profiles
    if limit and run.to_send > limit:
        _finish(
            run, token, Status.FAILED, last_error=messages.over_limit(run.to_send, limit, backend)
        )
        return
    if run.to_send or run.to_remove:  # an unchanged run makes no call at all
        plan = mapping.send_plan(export)
        try:
            # Before anything is sent: a mapped field gone from the list fails the run at once
            # (the export's fault, not the connection's).
            backend.prepare(export.list_id, plan.destination_fields(export), plan.options)
        except FieldsNotFound as error:
            _finish(run, token, Status.FAILED, last_error=messages.mapping_refused(export, error))
            return
        with _commits_without_waiting():
            _push_all(run, token, backend, table, plan, removing=True)
            if run.to_send:
                _push_all(run, token, backend, table, plan, removing=False)
    if export.resend_next_run and run.retry_of_id is None:
        Export.objects.filter(pk=export.pk).update(resend_next_run=False)
    _finish(run, token, runs.outcome(run))


def _approved_limits_if_changed(run: ExportRun, token: str) -> tuple[int, int] | None:
    """For an approved run that has sent nothing yet: when what its recipients were computed
    from changed while it waited (someone unsubscribed, bounced, was excluded or erased, the
    segment moved), its recipients are computed again, so that it never sends anyone it may no
    longer send; returns the adds and removals that were approved (the run waits again if it
    would now do more). None when nothing changed or the run is not such a run."""
    if not (run.approved and run.recipients_ready and not run.checkpoint):
        return None
    if unchanged.inputs_fingerprint(run.export) == run.inputs_fingerprint:
        return None
    logger.info("Export run %s: its inputs changed while it waited; computing again", run.pk)
    limits = (run.to_add, run.to_remove)
    runs.save(run, token, recipients_ready=False)
    return limits


def _guard_check(run: ExportRun, counts) -> guard.Verdict:
    """The pre-flight guard's verdict on the recipients just computed (``exports.guard``)."""
    started = time.monotonic()
    verdict = guard.check(run, adds=counts.added, removals=counts.to_remove)
    logger.info(
        "Export run %s: guard checked %s adds and %s removals against a list of %s in %.3fs",
        run.pk,
        verdict.adds,
        verdict.removals,
        verdict.list_size,
        time.monotonic() - started,
    )
    return verdict


def _hold(run: ExportRun, token: str, verdict: guard.Verdict, computed: dict) -> None:
    """Stop before sending anything, as **Awaiting approval**, keeping the ``computed`` counts;
    the recipients' tables stay until someone approves (the run is queued again and sends
    them) or discards it."""
    try:
        runs.transition(
            run,
            Status.AWAITING_APPROVAL,
            token=token,
            held_because=guard.stored_reasons(verdict),
            waiting_for=WaitingFor.NOTHING,
            **computed,
        )
    except runs.IllegalTransition:
        logger.warning("Export run %s was claimed by another worker before it was held", run.pk)
        return
    logger.warning("Export run %s awaits approval: %s", run.pk, " ".join(map(str, verdict.reasons)))
    try:
        services.run_after_hold(run.pk)
    except Exception:  # a notice must never change how a run stopped
        logger.exception("Notices for export run %s awaiting approval failed", run.pk)


def _finish_unchanged(run: ExportRun, token: str, previous: ExportRun) -> None:
    """Nothing the run would send changed since ``previous`` delivered everything: its members
    are unchanged, and those it skipped are skipped again, for the same reasons."""
    copy_skipped(previous, run)
    runs.save(
        run,
        token,
        profiles_total=previous.profiles_total,
        skipped=previous.skipped,
        excluded=previous.excluded,
        unchanged=previous.profiles_total - previous.skipped - previous.excluded,
        nothing_changed=True,
    )
    logger.info("Export run %s: nothing changed since run %s", run.pk, previous.pk)
    _finish(run, token, runs.outcome(run))


@contextmanager
def _commits_without_waiting():
    """Progress is saved after every batch, and waiting for each commit to reach the disk
    would cost more than the batch. A worker lost loses nothing this way; a database crash
    loses at most the last moments of progress, which the resumed run sends again (the
    services upsert, so a repeat is harmless)."""
    if db_connection.vendor != "postgresql":
        yield
        return
    with db_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with db_connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def _push_all(
    run: ExportRun,
    token: str,
    backend: Backend,
    table: RecipientTable,
    plan: mapping.SendPlan,
    *,
    removing: bool,
) -> None:
    """Push the adds and updates, or (then) the removals, from the checkpoint on."""
    export = run.export
    limiter = RateLimiter(f"connection:{export.connection_id}", backend.rate_limit)
    stop = threading.Event()
    progress = Progress(
        run,
        frozenset(backend.opted_out_codes),
        checkpoint=run.checkpoint,
        lasting_refusal_codes=frozenset(backend.lasting_refusal_codes),
        opted_out_states=backend.opted_out_states,
        adds=acknowledged_adds(run),
    )
    pending: dict[Future, Batch] = {}
    next_position = run.checkpoint
    exhausted = False
    # Fewer than four batches of adds and updates left a busy machine's worker and service
    # waiting for each other (two in flight sent for 45-68 s what eight sent in 25).
    in_flight = InFlightLimit(
        min(settings.EXPORT_CONCURRENCY, backend.max_in_flight or settings.EXPORT_CONCURRENCY),
        minimum=2 if removing else INITIAL,
        initial=1 if removing else INITIAL,
    )
    untagging = removing and plan.untag_leavers and backend.supports_tags
    size = backend.batch_size
    if removing and not untagging:
        size = backend.removal_batch_size_for(export.list_id)
    background_sync = BackgroundSync(run, token)
    recent = RecentRate(_delivered(run))
    pool = ThreadPoolExecutor(
        in_flight.maximum,
        thread_name_prefix=f"export-run-{run.pk}",
        initializer=logs.adopt,
        initargs=(logs.current(),),
    )
    try:
        while True:
            while not exhausted and len(pending) < in_flight.limit:
                batch = _next_batch(
                    table.page(next_position, size, removing=removing), plan, untagging=untagging
                )
                if batch is None:
                    exhausted = True
                    break
                next_position = batch.last
                progress.sending(batch)
                future = pool.submit(
                    _push_with_retries, backend, export.list_id, batch, limiter, stop
                )
                pending[future] = batch
            if not pending:
                background_sync.finish(progress.adds)
                return
            finished, _still_running = wait(
                pending, timeout=settings.EXPORT_HEARTBEAT_SECONDS, return_when=FIRST_COMPLETED
            )
            moved = False
            for future in finished:
                batch = pending.pop(future)
                moved |= progress.acknowledge(batch, future.result())
                in_flight.completed(batch.round_trip)
            if moved:
                _save_progress(run, token, progress, recent)
                background_sync.maybe_start(progress.adds)
            else:  # a heartbeat while batches wait for the service (or for Redis)
                runs.save(run, token, **_how_it_goes(run, recent))
            if run.cancel_requested:
                raise RunCancelled
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        background_sync.join()


def _next_batch(rows: list[tuple], plan: mapping.SendPlan, *, untagging: bool) -> Batch | None:
    if not rows:
        return None
    if untagging:
        return Batch(rows, [plan.leaver(row[1], row[7]) for row in rows], untagging=True)
    records = [
        plan.record(email, first_name, last_name, extras, action == RETURN, action == ADD)
        for _position, email, _customer_id, first_name, last_name, action, _hash, extras in rows
    ]
    warnings = [plan.consent_warning(row[1], row[7]) for row in rows] if plan.consent_field else []
    return Batch(rows, records, warnings=[warning for warning in warnings if warning])


def _push_with_retries(
    backend: Backend, list_id: str, batch: Batch, limiter: RateLimiter, stop: threading.Event
) -> PushResult:
    """Push one batch with ``call_with_retries``. Runs in a pool thread."""

    def send() -> PushResult:
        started = time.monotonic()
        if batch.removing and not batch.untagging:
            result = backend.remove(list_id, [record.email for record in batch.records])
        else:
            result = backend.push(list_id, batch.records)
        batch.round_trip = time.monotonic() - started
        return result

    try:
        return call_with_retries(send, limiter, stop, what=f"Batch {batch.first}-{batch.last}")
    finally:
        if db_connection.connection is not None:  # a token refresh used the database here
            db_connection.close()


def call_with_retries(
    call: Callable[[], T], limiter: RateLimiter, stop: threading.Event, *, what: str
) -> T:
    """Make one call to a service (a batch, an erasure), each attempt through the rate limiter,
    waiting out rate limits and retrying transient errors with backoff.

    Waiting for a rate limit does not use up the retry budget. Raises the last error when the
    retries run out, or at once for a permanent one; ``RunCancelled`` when ``stop`` is set.
    """
    attempt = 0
    rate_limited_for = 0.0
    while True:
        if stop.is_set():
            raise RunCancelled
        limiter.acquire(stopped=stop.is_set)
        try:
            return call()
        except RateLimited as error:
            wait_for = error.wait if error.hinted else _backoff(min(attempt + 1, 6))
            rate_limited_for += wait_for
            if rate_limited_for > settings.EXPORT_MAX_RATE_LIMIT_WAIT_SECONDS:
                raise Transient(messages.RATE_LIMITED_TOO_LONG) from error
            stop.wait(wait_for)
        except (Transient, AuthExpired) as error:
            attempt += 1
            if attempt > settings.EXPORT_MAX_RETRIES:
                raise
            logger.info("%s: %s; retry %s", what, error, attempt)
            stop.wait(_retry_pause(error, attempt))


def _retry_pause(error: BackendError, attempt: int) -> float:
    """Backoff, or longer when the service said how long to wait (``Retry-After`` on a 503)."""
    pause = _backoff(attempt)
    asked = getattr(error, "wait", None)
    if asked:
        pause = max(pause, min(asked, settings.EXPORT_MAX_RATE_LIMIT_WAIT_SECONDS))
    return pause


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter."""
    ceiling = min(
        settings.EXPORT_BACKOFF_MAX_SECONDS, settings.EXPORT_BACKOFF_BASE_SECONDS * 2**attempt
    )
    return random.uniform(ceiling / 2, ceiling)


def _failure_rows(
    run: ExportRun, batch: Batch, failures: list[RecordFailure]
) -> list[ExportRunFailure]:
    customer_ids = {row[1]: row[2] for row in batch.rows}
    return [
        ExportRunFailure(
            run=run,
            email=failure.email[:320],
            customer_id=customer_ids.get(failure.email.strip().lower(), ""),
            code=str(failure.code)[:50],
            reason=stored(failure.message),
        )
        for failure in failures
    ]


def _warning_rows(
    run: ExportRun, batch: Batch, warnings: list[RecordWarning]
) -> list[ExportRunFailure]:
    """Records sent with a value changed on the way: listed with the run's failures, flagged."""
    customer_ids = {row[1]: row[2] for row in batch.rows}
    return [
        ExportRunFailure(
            run=run,
            email=warning.email[:320],
            customer_id=customer_ids.get(warning.email.strip().lower(), ""),
            code=str(warning.code)[:50],
            reason=stored(warning.message),
            warning=True,
        )
        for warning in warnings
    ]


def _save_progress(run: ExportRun, token: str, progress: Progress, recent: RecentRate) -> None:
    """Counts, checkpoint, failures and sync state of the acknowledged batches, all or none."""
    totals = progress.totals()
    fields = {"checkpoint": progress.checkpoint, **totals, **_how_it_goes(run, recent, totals)}
    if progress.failures or progress.opted_out:
        with transaction.atomic():
            runs.save(run, token, **fields)
            ExportRunFailure.objects.bulk_create(progress.failures)
            record_opted_out(progress.opted_out, run.export, progress.consent_states)
            record_refusals(progress.refusals)
    else:
        runs.save(run, token, **fields)  # one statement
    progress.counts.clear()
    progress.failures.clear()
    progress.opted_out.clear()
    progress.consent_states.clear()
    progress.refusals.clear()


class BackgroundSync:
    """Writes the sync state on its own thread (and database connection) while the batches go
    on; at most one write at a time, each from where the last one ended.

    Every ``EXPORT_SYNC_STATE_SECONDS`` at most, and ``SYNC_STATE_WRITES`` times at most in
    all: a write reads the run's whole table (PostgreSQL plans a scan of all of it for a range of
    a tenth), so writing by the clock alone made a longer run cost more (19 writes of a million
    rows in a 70 s run on a busy machine, 0.1 CPU-s each, against 14 in a 17 s one). A range
    of adds only is copied from what the engine kept instead (``AcknowledgedAdds``), and so
    is the last one, at the end (``finish``); such a write reads no table, and is due as soon
    as the adds kept are many, whatever the clock.
    """

    def __init__(self, run: ExportRun, token: str):
        self.run = run
        self.token = token
        self.thread: threading.Thread | None = None
        self.last_started = time.monotonic()
        self.last_delivered = _delivered(run)
        self.step = (run.to_send + run.to_remove) / SYNC_STATE_WRITES
        # The adds of the range the thread writes, when the engine kept them.
        self.adds: AcknowledgedAdds | None = None

    def maybe_start(self, adds: AcknowledgedAdds | None = None) -> None:
        delivered = _delivered(self.run)
        due = (
            time.monotonic() - self.last_started > settings.EXPORT_SYNC_STATE_SECONDS
            and delivered - self.last_delivered >= self.step
        ) or (adds is not None and adds.due and adds.covers(self.run.synced_up_to))
        busy = self.thread is not None and self.thread.is_alive()
        if not due or busy or self.run.checkpoint <= self.run.synced_up_to:
            return
        self.last_started, self.last_delivered = time.monotonic(), delivered
        after, up_to = self.run.synced_up_to, self.run.checkpoint
        self.adds = adds.take(up_to) if adds is not None else None
        self.thread = threading.Thread(
            target=self._write, args=(after, up_to), name=f"sync-state-{self.run.pk}", daemon=True
        )
        self.thread.start()

    def _write(self, after: int, up_to: int) -> None:
        try:
            write_sync_state(self.run, self.token, after, up_to, self.adds)
            self.run.synced_up_to = up_to
        except Exception:  # the final write at the end of the run covers this range again
            logger.exception("Export run %s: writing the sync state failed", self.run.pk)
        finally:
            self.adds = None
            db_connection.close()

    def finish(self, adds: AcknowledgedAdds | None) -> None:
        """After the last batch: copy the adds acknowledged since the last write, when the
        engine kept all of them (else the end of the run reads them from its table)."""
        self.join()
        after, up_to = self.run.synced_up_to, self.run.checkpoint
        if adds is not None and up_to > after and adds.covers(after):
            write_sync_state(self.run, self.token, after, up_to, adds.take(up_to))
            self.run.synced_up_to = up_to

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


def _finish(run: ExportRun, token: str, status: str, **fields) -> None:
    if not runs.owned_by(run, token):
        return
    table = RecipientTable(run)
    if run.recipients_ready and table.exists():
        _sync(run, token)
        if run.sent + run.removed >= STATISTICS_AFTER_ROWS:
            analyze_sync_state()
    missing = runs.unaccounted(run)
    if status in ExportRun.DELIVERED_STATUSES and missing:
        # Never "done" when some of the profiles are in no count: the next run sends them.
        logger.error("Export run %s: %s addresses are in none of its counts", run.pk, missing)
        status, fields = Status.FAILED, {**fields, "last_error": messages.unaccounted(missing)}
    fields.setdefault("waiting_for", WaitingFor.NOTHING)
    try:
        runs.transition(run, status, token=token, **fields)
    except runs.IllegalTransition:
        logger.warning("Export run %s was claimed by another worker before it ended", run.pk)
        return
    # A run that delivered everything leaves its members for the next to start from.
    table.end(run, keep_basis=_delivered_everything(run, status))
    logger.info("Export run %s finished: %s", run.pk, status)
    try:
        services.run_after_finish(run.pk)
    except Exception:  # an alert must never change how a run ended
        logger.exception("Alerts for export run %s failed", run.pk)


def _delivered_everything(run: ExportRun, status: str) -> bool:
    """Whether the run's sync state is now what its members' table says (a full run that
    succeeded with nothing refused: ``unchanged.last_delivery``)."""
    return (
        status == Status.SUCCEEDED
        and run.retry_of_id is None
        and run.recipients_ready
        and not run.failed
        and not runs.unaccounted(run)
    )


def _sync(run: ExportRun, token: str) -> None:
    """Bring the sync state up to the checkpoint now (at the end of a run)."""
    if run.checkpoint > run.synced_up_to:
        write_sync_state(run, token, run.synced_up_to, run.checkpoint)
        run.synced_up_to = run.checkpoint
