"""The time left follows the service's recent pace, not the run's average."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from exports import engine, services
from exports.models import ExportRun
from exports.selectors import run_progress

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_recent_rate_spans_the_last_thirty_seconds(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(engine.time, "monotonic", clock)
    recent = engine.RecentRate(delivered=0)
    for _ in range(60):  # a minute at 100 per second
        clock.now += 1
        fast = recent.observe(int((clock.now - 1000) * 100))
    assert fast == pytest.approx(100)
    delivered = 6000
    for _ in range(30):  # then the service slows to one batch of 100 every 10 seconds
        clock.now += 1
        if clock.now % 10 == 0:
            delivered += 100
        slow = recent.observe(delivered)
    assert slow == pytest.approx(10, rel=0.15)


def test_the_time_left_is_estimated_at_the_recent_rate(make_export, everyone):
    run = services.run_request(export=make_export(everyone))
    started = timezone.now() - dt.timedelta(seconds=100)
    ExportRun.objects.filter(pk=run.pk).update(
        status=ExportRun.Status.RUNNING,
        started_at=started,
        recipients_ready=True,
        to_send=10_000,
        sent=9_000,
        recent_per_second=0.5,
    )
    run.refresh_from_db()

    progress = run_progress(run, now=started + dt.timedelta(seconds=100))

    assert progress.per_second == pytest.approx(90)  # the average, as shown
    assert progress.eta_seconds == 2000  # 1,000 left at the last moments' 0.5 per second
