"""Celery signal handlers: they run in whichever process sends or runs the task."""

from __future__ import annotations

import time

from celery.signals import before_task_publish, task_success
from django.core.cache import cache

from ops import heartbeat

SCHEDULED_REFRESH_TASK = "exports.tasks.scheduled_refresh"
LAST_SCHEDULED_REFRESH_KEY = "ops:last-successful-scheduled-refresh"


@before_task_publish.connect
def beat_sent_a_heartbeat(sender=None, **_signal) -> None:
    """Beat is alive when it publishes the heartbeat (only beat publishes it)."""
    if sender == "ops.tasks.heartbeat":
        heartbeat.record(heartbeat.BEAT_KEY)


@task_success.connect
def scheduled_refresh_succeeded(sender=None, result=None, **_signal) -> None:
    """A scheduled refresh succeeded when every segment refreshed (``run_refresh_chain``)."""
    if getattr(sender, "name", None) != SCHEDULED_REFRESH_TASK:
        return
    if isinstance(result, dict) and not result.get("segments_failed"):
        cache.set(LAST_SCHEDULED_REFRESH_KEY, time.time(), timeout=None)
