"""The states of an export run and the only legal moves between them.

Every change of a run's status goes through here, and so does every write of the worker that
owns it (the claim, progress with its heartbeat, the end): each is one guarded UPDATE, so a
move the run cannot make, or a write from a worker that no longer owns the run, changes
nothing and says so.
"""

from __future__ import annotations

from typing import cast

from django.db import connection as db_connection
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.translation import stored
from exports.models import ExportRun

Status = ExportRun.Status

ALLOWED: dict[str, set[str]] = {
    Status.QUEUED: {Status.RUNNING, Status.SKIPPED, Status.CANCELLED, Status.FAILED},
    # RUNNING -> RUNNING is a resume after the worker that ran it was lost. A running run
    # that the pre-flight guard stops awaits approval; it is never discarded while it runs.
    Status.RUNNING: {
        Status.RUNNING,
        Status.AWAITING_APPROVAL,
        *(status for status in ExportRun.FINISHED_STATUSES if status != Status.DISCARDED),
    },
    # Approve queues it again (it carries on with the recipients it computed); Discard ends it.
    Status.AWAITING_APPROVAL: {Status.QUEUED, Status.DISCARDED},
}


class IllegalTransition(Exception):
    """A run was asked to move to a state it cannot reach from where it is."""


class RunLost(Exception):
    """Another worker claimed the run: this one must stop without touching it."""


def allowed_sources(target: str) -> list[str]:
    return [source for source, targets in ALLOWED.items() if target in targets]


def outcome(run: ExportRun) -> str:
    """How a run that went through to the end finishes.

    **Successful** when every member was delivered or skipped because of its own data (no
    email address, one that is not valid, one another member has, or a person who opted out
    at the service): those are counted and listed, but they are not news. **Completed with
    warnings** when the service refused records, or some could not be delivered, or took a
    value changed (shortened).
    """
    return Status.COMPLETED_WITH_WARNINGS if run.failed or run.warnings else Status.SUCCEEDED


def unaccounted(run: ExportRun) -> int:
    """Addresses considered that no count holds: every member and every address to remove is
    added, updated, removed, unchanged, skipped or failed, so this is 0 for a finished run."""
    considered = run.profiles_total + run.to_remove
    return considered - sum(getattr(run, name) for name in ExportRun.OUTCOME_COUNTS)


def transition(run: ExportRun, target: str, *, token: str | None = None, **fields) -> ExportRun:
    """Move the run to ``target`` in one guarded UPDATE; raise IllegalTransition if it can't.

    With ``token``, only while that worker owns the run.
    """
    if not _move(run, target, allowed_sources(target), token=token, **fields):
        current = ExportRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        raise IllegalTransition(f"run {run.pk} cannot go from {current} to {target}")
    return run


def record_skipped(export, reason) -> ExportRun:
    """A scheduled run that was skipped before it began: created as it ends (it never held
    its export, so it is recorded even while another run of the export awaits approval)."""
    return ExportRun.objects.create(
        export=export,
        trigger=ExportRun.Trigger.SCHEDULE,
        status=Status.SKIPPED,
        last_error=stored(reason),
        finished_at=timezone.now(),
    )


def claim(run_id: int, token: str, *, stalled_before) -> ExportRun | None:
    """Take a queued run, or a running one whose worker went silent before ``stalled_before``,
    for the worker with ``token``; None when it is not there to take (another worker has it,
    or it ended)."""
    now = timezone.now()
    claimed = ExportRun.objects.filter(
        Q(status=Status.QUEUED) | Q(status=Status.RUNNING, heartbeat_at__lt=stalled_before),
        pk=run_id,
    ).update(
        status=Status.RUNNING,
        worker_token=token,
        heartbeat_at=now,
        started_at=Coalesce(F("started_at"), now),
    )
    if not claimed:
        return None
    return ExportRun.objects.select_related("export__connection").get(pk=run_id)


def save(run: ExportRun, token: str, **fields) -> None:
    """Update the running run if this worker still owns it (else raise RunLost), with a
    heartbeat, and read back whether someone asked it to stop: one statement per acknowledged
    batch."""
    fields["heartbeat_at"] = timezone.now()
    columns = [cast(models.Field, ExportRun._meta.get_field(name)).column for name in fields]
    assignments = ", ".join(f"{column} = %s" for column in columns)
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


def record_synced(run: ExportRun, token: str, up_to: int) -> None:
    """The sync state holds what the service acknowledged up to ``up_to`` (inside the
    transaction that wrote it)."""
    ExportRun.objects.filter(pk=run.pk, worker_token=token).update(synced_up_to=up_to)


def owned_by(run: ExportRun, token: str) -> bool:
    return ExportRun.objects.filter(pk=run.pk, worker_token=token).exists()


def request_cancel(run: ExportRun) -> None:
    """Stop a run: a queued one at once; a running one is flagged, and its worker ends it at
    the next batch boundary."""
    if not _move(run, Status.CANCELLED, [Status.QUEUED], cancel_requested=True):
        ExportRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()


def _move(run: ExportRun, target: str, sources, *, token: str | None = None, **fields) -> bool:
    changes = {"status": target, **fields}
    if "last_error" in changes:
        changes["last_error"] = stored(changes["last_error"])
    if target in ExportRun.FINISHED_STATUSES:
        changes.setdefault("finished_at", timezone.now())
    guarded = ExportRun.objects.filter(pk=run.pk, status__in=list(sources))
    if token is not None:
        guarded = guarded.filter(worker_token=token)
    if not guarded.update(**changes):
        return False
    for name, value in changes.items():
        setattr(run, name, value)
    return True
