"""What a Celery worker does for operators from its own process."""

from __future__ import annotations

import logging

from celery import bootsteps

from ops import heartbeat

logger = logging.getLogger(__name__)


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
