from __future__ import annotations

from exports.inflight import InFlightLimit


class Clock:
    """The time a simulated run has taken: each round lasts its batches' round trip (they are
    in flight together)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limit_of(maximum: int, **kwargs) -> InFlightLimit:
    return InFlightLimit(maximum, clock=Clock(), **kwargs)


def run_rounds(limit: InFlightLimit, round_trip_for, rounds: int) -> list[int]:
    """Feed ``rounds`` rounds of completions; the round trip depends on the limit."""
    seen = []
    clock = limit.clock
    assert isinstance(clock, Clock)
    for _round in range(rounds):
        round_trip = round_trip_for(limit.limit)
        clock.now += round_trip
        for _batch in range(limit.limit):
            limit.completed(round_trip)
        seen.append(limit.limit)
    return seen


def test_a_distant_service_gets_every_batch_allowed_in_flight_within_a_few_rounds():
    limit = limit_of(16)
    seen = run_rounds(limit, lambda _in_flight: 0.1, rounds=5)  # latency: no queueing
    assert seen[:3] == [8, 16, 16]
    assert limit.limit == 16


def test_a_saturated_machine_keeps_few_batches_in_flight():
    # Two cores, 8 ms of work per batch: beyond two in flight, batches only queue.
    limit = limit_of(16)
    seen = run_rounds(limit, lambda in_flight: 0.008 * max(1, in_flight / 2), rounds=40)
    assert max(seen[5:]) <= 8  # two served, a few queued: never the sixteen allowed


def removal_batch_round_trip(in_flight: int) -> float:
    """A hundred calls, mostly the worker's own (GIL-bound) CPU, as measured on two cores:
    1.16 ms a call alone, 0.9 ms with two batches at once, then slower with each one more."""
    per_call = 0.00116 if in_flight == 1 else 0.0009 + 0.00004 * (in_flight - 2)
    return 100 * per_call * in_flight


def test_batches_of_our_own_work_started_one_at_a_time_stay_few():
    limit = limit_of(16, initial=1)
    seen = run_rounds(limit, removal_batch_round_trip, rounds=30)
    assert max(seen[2:]) <= 3
    started_at_four = limit_of(16)
    run_rounds(started_at_four, removal_batch_round_trip, rounds=30)
    # The first round trip seen was already queued: it stays higher than started from one.
    assert started_at_four.limit > max(seen[-10:])


def test_round_trips_that_vary_a_little_do_not_hold_a_distant_service_back():
    limit = limit_of(16)
    run_rounds(limit, lambda in_flight: 0.1 + 0.002 * in_flight, rounds=10)
    assert limit.limit == 16


def test_the_limit_comes_down_when_the_service_slows_down_and_stays_within_bounds():
    limit = limit_of(16)
    run_rounds(limit, lambda _in_flight: 0.05, rounds=5)
    assert limit.limit == 16
    run_rounds(limit, lambda in_flight: 0.05 * in_flight, rounds=40)  # now every batch queues
    assert limit.limit == 2
    single = limit_of(1)
    run_rounds(single, lambda _in_flight: 0.01, rounds=5)
    assert single.limit == 1


def test_a_busy_machine_keeps_enough_batches_in_flight_to_keep_both_sides_busy():
    # One batch went alone at a quiet moment (5 ms); since then every batch also waits some
    # 80 ms for a core, whatever the limit, so each batch more in flight delivers more.
    limit = limit_of(16)
    run_rounds(limit, lambda _in_flight: 0.005, rounds=1)
    seen = run_rounds(limit, lambda in_flight: 0.08 + 0.004 * in_flight, rounds=40)
    assert min(seen[5:]) >= 7


def test_at_the_fewest_batches_it_looks_again_at_what_one_more_delivers():
    limit = limit_of(16)
    run_rounds(limit, lambda _in_flight: 0.005, rounds=1)
    run_rounds(limit, lambda in_flight: 0.02 * in_flight, rounds=40)  # one batch at a time
    assert limit.limit == 2
    # Then the machine gets busy: every batch waits 80 ms for a core, however many are out.
    seen = run_rounds(limit, lambda _in_flight: 0.08, rounds=60)
    assert min(seen[-10:]) >= 8
