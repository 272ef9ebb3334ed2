"""Celery tasks: they take ids and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def read_back_consent(
    connection_id: int,
    requested_by: int | None = None,
    attempt: int = 0,
    rate_limited_for: float = 0.0,
) -> None:
    """Read a connection's consent back; a read that fails for now queues itself again (see
    ``connections.consent.read_back_run``). ``requested_by``: the administrator who asked,
    whose role is checked again here."""
    from connections.consent import read_back_run
    from core.logs import log_context

    with log_context(connection_id=connection_id):
        read_back_run(
            connection_id=connection_id,
            requested_by=requested_by,
            attempt=attempt,
            rate_limited_for=rate_limited_for,
        )
