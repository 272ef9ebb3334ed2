"""Celery tasks: they take ids and call the engine or a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_export(run_id: int) -> None:
    from core.logs import log_context
    from exports.engine import execute

    with log_context(run_id=run_id):
        execute(run_id)


@shared_task
def alert_run_finished(run_id: int, schedule_paused: bool = False) -> None:
    from exports import alerts

    alerts.run_finished(run_id, schedule_paused=schedule_paused)


@shared_task
def alert_run_awaiting_approval(run_id: int) -> None:
    from exports import alerts

    alerts.run_awaiting_approval(run_id)


@shared_task
def alert_connection_needs_reauthentication(connection_id: int) -> None:
    from exports import alerts

    alerts.connection_needs_reauthentication(connection_id)


@shared_task
def resume_stalled_runs() -> int:
    from exports.services import runs_resume_stalled

    return runs_resume_stalled()


@shared_task
def scheduled_refresh() -> dict[str, int]:
    from exports.schedule import run_refresh_chain

    return run_refresh_chain()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def propagate_erasure(erasure_id: int, run_id: int | None = None) -> None:
    from exports.erasures import erasure_propagate

    erasure_propagate(erasure_id=erasure_id, run_id=run_id)
