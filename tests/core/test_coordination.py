"""Redis out of reach: whoever needs it waits, sends nothing meanwhile, and goes on after."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis

from connections.types.mailchimp.slots import ConnectionSlots
from core import coordination
from exports.ratelimit import RateLimiter

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch):
    monkeypatch.setattr(coordination, "FIRST_PAUSE_SECONDS", 0.001)
    monkeypatch.setattr(coordination, "LONGEST_PAUSE_SECONDS", 0.01)
    yield
    # A caller that stopped while waiting leaves the outage open until a call succeeds.
    monkeypatch.setattr(coordination, "_outage_began", None)


class Flaky:
    """Fails as an unreachable Redis ``failures`` times, then answers."""

    def __init__(self, failures: int, answer):
        self.failures = failures
        self.answer = answer
        self.calls = 0
        self.outage_seen: float | None = None

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            self.outage_seen = coordination.outage_seconds()
            raise redis.exceptions.ConnectionError("Connection refused")
        return self.answer


def test_a_call_waits_out_the_outage_and_the_process_knows_while_it_lasts():
    call = Flaky(failures=4, answer="ok")
    assert coordination.waiting_out_outages(call) == "ok"
    assert call.calls == 5
    assert call.outage_seen is not None  # known during the outage, for the run's progress
    assert coordination.outage_seconds() is None  # and over once Redis answered


def test_a_caller_that_stops_while_waiting_is_told_so():
    stop = threading.Event()
    call = Flaky(failures=10**9, answer="never")
    threading.Timer(0.05, stop.set).start()
    with pytest.raises(coordination.Stopped):
        coordination.waiting_out_outages(call, stop.is_set)


def test_the_rate_limiter_takes_no_slot_of_its_own_while_redis_is_out_of_reach(settings):
    """No fallback to a bucket in the process: with several workers it would multiply the
    rate the service allows."""
    limiter = RateLimiter(f"test-{uuid.uuid4().hex}", rate=1000)
    limiter._script = Flaky(failures=3, answer="0")
    limiter.acquire()
    assert limiter._script.calls == 4


def test_the_rate_limiter_gives_up_waiting_when_the_run_stops(settings):
    settings.REDIS_URL = UNREACHABLE_REDIS
    limiter = RateLimiter(f"test-{uuid.uuid4().hex}", rate=1000)
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    limiter.acquire(stopped=stop.is_set)  # returns; the engine then sees the stop
    assert stop.is_set()


def test_a_mailchimp_slot_waits_for_redis_and_is_released_even_if_redis_went_meanwhile(
    settings,
):
    slots = ConnectionSlots(f"test-{uuid.uuid4().hex}", limit=2)
    slots._script = Flaky(failures=2, answer=1)
    slots._redis = redis.Redis.from_url(UNREACHABLE_REDIS, socket_connect_timeout=0.2)
    entered = False
    with slots.slot():  # releasing the lease fails quietly: it expires on its own
        entered = True
    assert entered and slots._script.calls == 3
