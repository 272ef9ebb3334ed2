"""How many batches a run keeps in flight at once.

More batches in flight hide the service's latency, until the work per batch (ours, the
service's, the database's) saturates the machine: from then on each extra batch only waits,
makes every batch slower and, on a small machine, steals CPU from the rest. From the fastest
round trip seen (the cost of a batch with no queue) and the current one, the limit estimates
the share of the batches in flight that are queueing rather than being served (as TCP Vegas
does), and grows while that share is under ``QUEUED_LOW``, shrinks while it is over
``QUEUED_HIGH``. A share, not a count: a distant service's round trips vary by some tens of
milliseconds whatever we do, and that must not hold sixteen batches back. The limit starts low
and doubles each round until batches queue (slow start), so a distant service gets
``EXPORT_CONCURRENCY`` batches in flight within a few round trips.

The fastest round trip is only the cost of a batch with no queue if some batch went alone: a
batch of removals is a hundred calls, mostly our own CPU, and four of them from the start are
already slowed by each other, so that they looked unqueued at six or seven in flight (each
one more costs a GIL-bound worker time). Removals therefore start from one.
"""

from __future__ import annotations

import math

QUEUED_LOW = 0.25
QUEUED_HIGH = 0.5
INITIAL = 4


class InFlightLimit:
    def __init__(self, maximum: int, minimum: int = 2, initial: int = INITIAL):
        self.maximum = max(1, maximum)
        self.minimum = min(minimum, self.maximum)
        self.limit = min(initial, self.maximum)
        self.base_round_trip = math.inf
        self.slow_start = True
        self._round: list[float] = []

    def completed(self, round_trip: float) -> None:
        """A batch came back after ``round_trip`` seconds; adjust the limit once per round
        (once as many batches as the limit allows have come back)."""
        self.base_round_trip = min(self.base_round_trip, round_trip)
        self._round.append(round_trip)
        if len(self._round) < self.limit:
            return
        typical = sorted(self._round)[len(self._round) // 2]
        self._round.clear()
        queued = 1 - self.base_round_trip / typical if typical > 0 else 0
        if queued < QUEUED_LOW:
            grown = self.limit * 2 if self.slow_start else self.limit + 1
            self.limit = min(self.maximum, grown)
        elif queued > QUEUED_HIGH:
            self.slow_start = False
            self.limit = max(self.minimum, self.limit - 1)
        else:
            self.slow_start = False
