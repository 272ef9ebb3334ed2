"""Celery tasks: they take ids and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_source(run_id: int) -> None:
    from core.logs import log_context
    from sources.services import run_execute

    with log_context(run_id=run_id):
        run_execute(run_id=run_id)
