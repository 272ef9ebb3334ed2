from __future__ import annotations

from celery import shared_task

from ops import heartbeat


@shared_task(name="ops.tasks.heartbeat", ignore_result=True, expires=heartbeat.HEARTBEAT_SECONDS)
def heartbeat_task() -> None:
    """Sent by beat, run by a worker: proves both are alive (``ops.heartbeat``)."""
    heartbeat.record(heartbeat.WORKER_KEY)
