"""What our Celery worker adds to the stock one: it survives its broker restarting, marks
itself alive from its own process, and picks up stalled export runs as it starts."""

from __future__ import annotations

import logging

from celery import bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer
from django.conf import settings
from kombu.common import ignore_errors

from ops import heartbeat

logger = logging.getLogger(__name__)

RESUME_STALLED_RUNS_TASK = "exports.tasks.resume_stalled_runs"


class Consumer(CeleryConsumer):
    """The stock consumer, closing a lost broker connection in an order that cannot crash.

    On a lost connection celery 5.7.0 first collects the connection, which drops its
    transport's client, then closes it. Closing the default channel restores the unacknowledged
    messages (an export run in flight, ``acks_late``) through that client, fails with
    ``AttributeError: 'NoneType' object has no attribute 'hostname'``, and the worker exits
    ("Unrecoverable error"). Closed first, while the client is there, the channel's restore
    fails as a connection error, which celery ignores, and the consumer reconnects. The run
    itself is safe either way: it lives in the database and its claim decides who runs it.
    """

    def on_connection_error_after_connected(self, exc):
        channel = getattr(self.connection, "_default_channel", None)
        if channel is not None:
            ignore_errors(self.connection, channel.close)
        super().on_connection_error_after_connected(exc)


class MarkAlive(bootsteps.StartStopStep):
    """Records this worker's mark for ``/readyz`` every ``HEARTBEAT_SECONDS`` from the worker's
    own timer, so that a worker is never reported down because beat is."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_entry = None

    def start(self, worker):
        self._record()
        self.timer_entry = worker.timer.call_repeatedly(
            heartbeat.HEARTBEAT_SECONDS, self._record, priority=10
        )

    def stop(self, worker):
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    @staticmethod
    def _record() -> None:
        try:
            heartbeat.record(heartbeat.WORKER_KEY)
        except Exception as error:  # the cache is down: /readyz says so on its own
            logger.warning("Could not record the worker's mark (%s)", type(error).__name__)


def resume_stalled_runs_soon(app) -> None:
    """Queue the sweep of stalled runs now and once more when a run this worker's predecessor
    left would count as stalled: a worker that starts picks them up itself, beat or not."""
    queue = app.conf.task_default_queue
    app.send_task(RESUME_STALLED_RUNS_TASK, queue=queue)
    app.send_task(
        RESUME_STALLED_RUNS_TASK,
        queue=queue,
        countdown=settings.EXPORT_STALLED_AFTER_SECONDS + 1,
    )
