"""The states of an export run and the only legal moves between them."""

from __future__ import annotations

from django.utils import timezone

from config.translation import stored
from exports.models import ExportRun

Status = ExportRun.Status

ALLOWED = {
    Status.QUEUED: {Status.RUNNING, Status.SKIPPED, Status.CANCELLED, Status.FAILED},
    # RUNNING -> RUNNING is a resume after the worker that ran it was lost.
    Status.RUNNING: {
        Status.RUNNING,
        Status.SUCCEEDED,
        Status.COMPLETED_WITH_WARNINGS,
        Status.FAILED,
        Status.SKIPPED,
        Status.CANCELLED,
    },
}
FINISHED = {
    Status.SUCCEEDED,
    Status.COMPLETED_WITH_WARNINGS,
    Status.FAILED,
    Status.SKIPPED,
    Status.CANCELLED,
}


class IllegalTransition(Exception):
    """A run was asked to move to a state it cannot reach from where it is."""


def allowed_sources(target: str) -> list[str]:
    return [source for source, targets in ALLOWED.items() if target in targets]


def transition(run: ExportRun, target: str, **fields) -> ExportRun:
    """Move the run to ``target`` in one guarded UPDATE; raise IllegalTransition if it can't."""
    changes = {"status": target, **fields}
    if "last_error" in changes:
        changes["last_error"] = stored(changes["last_error"])
    if target in FINISHED:
        changes.setdefault("finished_at", timezone.now())
    moved = ExportRun.objects.filter(pk=run.pk, status__in=allowed_sources(target)).update(
        **changes
    )
    if not moved:
        current = ExportRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        raise IllegalTransition(f"run {run.pk} cannot go from {current} to {target}")
    for name, value in changes.items():
        setattr(run, name, value)
    return run
