from __future__ import annotations

import uuid

import pytest

from exports import ratelimit


class FakeClock:
    def __init__(self):
        self.now = 1_000.0
        self.slept = 0.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
def test_requests_beyond_the_burst_wait_for_their_own_slot_without_asking_again(
    clock, settings, shared
):
    if not shared:
        settings.REDIS_URL = ""
    limiter = ratelimit.RateLimiter(f"test-{uuid.uuid4().hex}", rate=10)
    takes = 0
    take = limiter._take

    def counted_take() -> float:
        nonlocal takes
        takes += 1
        return take()

    limiter._take = counted_take
    for _request in range(15):
        limiter.acquire()
    assert takes == 15  # one question per request: nobody polls
    assert clock.slept == pytest.approx(0.5)  # 10 at once (the burst), then one every 0.1 s


def test_a_stopped_request_stops_waiting(clock, settings):
    settings.REDIS_URL = ""
    limiter = ratelimit.RateLimiter("stopping", rate=1, capacity=1)
    limiter.acquire()
    limiter.acquire(stopped=lambda: clock.slept > 0.3)
    assert clock.slept == pytest.approx(0.5)  # woke at its next check, did not sleep a second
