from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from config.translation import shown
from connections.types import registry
from exports.models import ExportRun, RefreshSchedule
from exports.schedule import run_refresh_chain, schedule_save
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def test_saving_the_schedule_creates_one_beat_entry_per_time(alice):
    schedule_save(
        enabled=True,
        frequency="weekly",
        weekdays=[1, 3, 7],
        time_zone="Europe/Oslo",
        times=["06:30", "18:00"],
        user=alice,
    )
    entries = {
        task.name: task
        for task in PeriodicTask.objects.filter(name__startswith="Scheduled refresh")
    }
    assert set(entries) == {"Scheduled refresh 1", "Scheduled refresh 2"}
    first = entries["Scheduled refresh 1"].crontab
    assert (first.hour, first.minute, first.day_of_week, str(first.timezone)) == (
        "6",
        "30",
        "1,3,0",
        "Europe/Oslo",
    )
    assert entries["Scheduled refresh 1"].task == "exports.tasks.scheduled_refresh"

    schedule_save(
        enabled=True, frequency="daily", weekdays=[1], time_zone="UTC", times=["07:00"], user=alice
    )
    entries = PeriodicTask.objects.filter(name__startswith="Scheduled refresh")
    assert [(t.name, t.crontab.day_of_week) for t in entries] == [("Scheduled refresh 1", "*")]
    assert RefreshSchedule.load().weekdays == []

    schedule_save(
        enabled=False, frequency="daily", weekdays=[], time_zone="UTC", times=["07:00"], user=alice
    )
    assert not PeriodicTask.objects.filter(name__startswith="Scheduled refresh").exists()


def test_the_chain_refreshes_segments_first_and_skips_exports_whose_segment_failed(
    make_export, monkeypatch
):
    monkeypatch.setattr("exports.services._enqueue", lambda run_id: None)
    # The connection's service is not reachable here: no consent to read back (tested apart).
    monkeypatch.setattr(registry.backend_class("autopilot"), "reads_consent", False)
    ProfileFactory(attributes={"city": "Oslo"})
    good = SegmentFactory(
        rules={
            "match": "all",
            "conditions": [{"field": "city", "operator": "equals", "value": "Oslo"}],
        }
    )
    healthy = make_export(good, display_name="Healthy")
    broken = SegmentFactory(
        name="Broken",
        rules={"match": "all", "conditions": [{"field": "city", "operator": "is_empty"}]},
    )
    failing = make_export(broken, display_name="Failing")
    broken.rules = {"match": "all", "conditions": [{"field": "gone", "operator": "is_empty"}]}
    broken.save()
    good.member_count = 0
    good.save()

    outcome = run_refresh_chain()

    assert outcome == {
        "sources_run": 0,
        "sources_failed": 0,
        "sources_skipped": 0,
        "consent_reads": 0,
        "consent_reads_failed": 0,
        "consent_reads_skipped": 0,
        "segments_refreshed": 1,
        "segments_failed": 1,
        "exports_queued": 1,
        "exports_skipped": 1,
    }
    good.refresh_from_db()
    assert good.member_count == 1
    assert ExportRun.objects.get(export=healthy).status == ExportRun.Status.QUEUED
    skipped = ExportRun.objects.get(export=failing)
    assert skipped.status == ExportRun.Status.SKIPPED
    assert "segment “Broken” failed to refresh" in shown(skipped.last_error)
