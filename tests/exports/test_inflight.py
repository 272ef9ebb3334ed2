from __future__ import annotations

from exports.inflight import InFlightLimit


def run_rounds(limit: InFlightLimit, round_trip_for, rounds: int) -> list[int]:
    """Feed ``rounds`` rounds of completions; the round trip depends on the limit."""
    seen = []
    for _round in range(rounds):
        for _batch in range(limit.limit):
            limit.completed(round_trip_for(limit.limit))
        seen.append(limit.limit)
    return seen


def test_a_distant_service_gets_every_batch_allowed_in_flight_within_a_few_rounds():
    limit = InFlightLimit(16)
    seen = run_rounds(limit, lambda _in_flight: 0.1, rounds=5)  # latency: no queueing
    assert seen[:3] == [8, 16, 16]
    assert limit.limit == 16


def test_a_saturated_machine_keeps_few_batches_in_flight():
    # Two cores, 8 ms of work per batch: beyond two in flight, batches only queue.
    limit = InFlightLimit(16)
    seen = run_rounds(limit, lambda in_flight: 0.008 * max(1, in_flight / 2), rounds=40)
    assert max(seen[5:]) <= 8  # two served, a few queued: never the sixteen allowed


def removal_batch_round_trip(in_flight: int) -> float:
    """A hundred calls, mostly the worker's own (GIL-bound) CPU, as measured on two cores:
    1.16 ms a call alone, 0.9 ms with two batches at once, then slower with each one more."""
    per_call = 0.00116 if in_flight == 1 else 0.0009 + 0.00004 * (in_flight - 2)
    return 100 * per_call * in_flight


def test_batches_of_our_own_work_started_one_at_a_time_stay_few():
    limit = InFlightLimit(16, initial=1)
    seen = run_rounds(limit, removal_batch_round_trip, rounds=30)
    assert max(seen[2:]) <= 3
    started_at_four = InFlightLimit(16)
    run_rounds(started_at_four, removal_batch_round_trip, rounds=30)
    assert started_at_four.limit >= 6  # the first round trip seen was already queued


def test_round_trips_that_vary_a_little_do_not_hold_a_distant_service_back():
    limit = InFlightLimit(16)
    run_rounds(limit, lambda in_flight: 0.1 + 0.002 * in_flight, rounds=10)
    assert limit.limit == 16


def test_the_limit_comes_down_when_the_service_slows_down_and_stays_within_bounds():
    limit = InFlightLimit(16)
    run_rounds(limit, lambda _in_flight: 0.05, rounds=5)
    assert limit.limit == 16
    run_rounds(limit, lambda in_flight: 0.05 * in_flight, rounds=40)  # now every batch queues
    assert limit.limit == 2
    single = InFlightLimit(1)
    run_rounds(single, lambda _in_flight: 0.01, rounds=5)
    assert single.limit == 1
