"""How many batches a run keeps in flight at once.

More batches in flight hide the service's latency, until the work per batch (ours, the
service's, the database's) saturates the machine: from then on each extra batch only waits,
makes every batch slower and, on a small machine, steals CPU from the rest. From the fastest
round trip seen (the cost of a batch with no queue) and the current one, the limit estimates
the share of the batches in flight that are queueing rather than being served (as TCP Vegas
does), and grows while that share is under ``QUEUED_LOW``. A share, not a count: a distant
service's round trips vary by some tens of milliseconds whatever we do, and that must not hold
sixteen batches back. The limit starts low and doubles each round until batches queue (slow
start), so a distant service gets ``EXPORT_CONCURRENCY`` batches in flight within a few round
trips.

Round trips that grow do not always mean queueing, though: on a busy machine every batch
waits for a core, ours and the service's, even two at a time (the fastest round trip 5 ms, the
typical one 60 to 150 ms), and there more batches in flight keep both sides busy whenever they
get a core. Once batches queue, the limit therefore follows the throughput: it keeps the
batches delivered per second at each limit it tried (recent rounds only), goes up one while
that shows one batch more in flight delivering its share (``PAYS``), and comes down one only
when the share queueing is over ``QUEUED_HIGH`` without that (which also measures the limit
below); at the fewest it looks up again once what one more delivered is forgotten, or a run
that came down while the machine was quiet would stay there when it gets busy. The rounds of
a busy machine vary by a third: each step is judged on several.

The fastest round trip is only the cost of a batch with no queue if some batch went alone: a
batch of removals is a hundred calls, mostly our own CPU, and four of them from the start are
already slowed by each other, so that they looked unqueued at six or seven in flight (each
one more costs a GIL-bound worker time). Removals therefore start from one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

QUEUED_LOW = 0.25
QUEUED_HIGH = 0.5
INITIAL = 4
#: The share of its due that one batch more in flight must deliver to stay: with ``n`` in
#: flight, one more could deliver ``1 / n`` more, if nothing but waiting held them back.
PAYS = 0.5
#: How the rate of a limit follows its newer rounds, and how many rounds a rate is trusted.
RATE_WEIGHT = 0.3
RATE_KEPT_ROUNDS = 12


class InFlightLimit:
    def __init__(
        self,
        maximum: int,
        minimum: int = 2,
        initial: int = INITIAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.maximum = max(1, maximum)
        self.minimum = min(minimum, self.maximum)
        self.limit = min(initial, self.maximum)
        self.base_round_trip = math.inf
        self.slow_start = True
        self._round: list[float] = []
        self.clock = clock
        self._round_started = clock()
        self._rounds = 0
        # limit → (batches a second, the round it was last measured in)
        self._rates: dict[int, tuple[float, int]] = {}

    def completed(self, round_trip: float) -> None:
        """A batch came back after ``round_trip`` seconds; adjust the limit once per round
        (once as many batches as the limit allows have come back)."""
        self.base_round_trip = min(self.base_round_trip, round_trip)
        self._round.append(round_trip)
        if len(self._round) < self.limit:
            return
        now = self.clock()
        self._measure(len(self._round) / max(now - self._round_started, 1e-6))
        self._round_started = now
        typical = sorted(self._round)[len(self._round) // 2]
        self._round.clear()
        queued = 1 - self.base_round_trip / typical if typical > 0 else 0
        if queued < QUEUED_LOW:
            grown = self.limit * 2 if self.slow_start else self.limit + 1
            self._move_to(grown)
            return
        self.slow_start = False
        here = self._rate(self.limit)
        above, below = self._rate(self.limit + 1), self._rate(self.limit - 1)
        if here is not None and (
            (above is not None and above > here * (1 + PAYS / self.limit))
            or (below is not None and here > below * (1 + PAYS / (self.limit - 1)))
        ):
            self._move_to(self.limit + 1)  # more in flight delivered more, or may
        elif above is None and self.limit == self.minimum:
            self._move_to(self.limit + 1)  # at the bottom, look again at what one more delivers
        elif queued > QUEUED_HIGH:
            self._move_to(self.limit - 1)

    def _move_to(self, limit: int) -> None:
        self.limit = max(self.minimum, min(self.maximum, limit))

    def _measure(self, rate: float) -> None:
        self._rounds += 1
        known = self._rate(self.limit)
        if known is not None:
            rate = known + RATE_WEIGHT * (rate - known)
        self._rates[self.limit] = (rate, self._rounds)

    def _rate(self, limit: int) -> float | None:
        """Batches a second delivered at ``limit``, if measured in the last rounds."""
        rate, measured_in = self._rates.get(limit, (0.0, -RATE_KEPT_ROUNDS))
        return rate if self._rounds - measured_in < RATE_KEPT_ROUNDS else None
