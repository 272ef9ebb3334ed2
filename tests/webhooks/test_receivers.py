"""The events that exports, segments and connections announce reach subscribed endpoints."""

from __future__ import annotations

import json

import pytest
from django.test import TestCase
from django.utils import timezone

from connections.services import connection_record_auth_failure
from exports import services as export_services
from exports.models import Export, ExportRun
from segments.services import segment_refresh
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory, SegmentFactory
from webhooks import receivers, services
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db


def sent(event_type: str) -> list[dict]:
    return [
        json.loads(body)
        for body in Delivery.objects.filter(event_type=event_type).values_list("body", flat=True)
    ]


@pytest.fixture
def finished_run(db):
    def make(status: str) -> ExportRun:
        export = Export.objects.create(
            display_name="Newsletter", connection=ConnectionFactory(), list_id="list-1"
        )
        return ExportRun.objects.create(
            export=export,
            trigger="user",
            status=status,
            profiles_total=12,
            sent=9,
            added=7,
            updated=2,
            failed=1,
            skipped=2,
            started_at=timezone.now(),
            finished_at=timezone.now(),
        )

    return make


@pytest.mark.parametrize("status", ["succeeded", "failed", "completed_with_warnings"])
def test_a_finished_run_is_announced_with_its_counts(endpoint, finished_run, status):
    run = finished_run(status)

    export_services.run_after_finish(run.pk)

    (event,) = sent("export_run.finished")
    assert event["type"] == "export_run.finished"
    assert event["data"]["export"]["id"] == run.export_id
    assert event["data"]["export"]["name"] == "Newsletter"
    assert event["data"]["run"]["id"] == run.pk
    assert event["data"]["run"]["status"] == status
    assert event["data"]["run"]["finished_at"] == run.finished_at.isoformat()
    assert event["data"]["run"]["counts"] == {
        "profiles": 12,
        "sent": 9,
        "added": 7,
        "updated": 2,
        "unchanged": 0,
        "removed": 0,
        "failed": 1,
        "skipped": 2,
        "excluded": 0,
        "warnings": 0,
    }


@pytest.mark.parametrize("status", ["skipped", "cancelled"])
def test_skipped_and_cancelled_runs_are_not_announced(endpoint, finished_run, status):
    export_services.run_after_finish(finished_run(status).pk)

    assert sent("export_run.finished") == []


def test_a_webhook_that_cannot_be_published_never_breaks_the_end_of_a_run(
    endpoint, finished_run, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(services, "event_publish", broken)

    export_services.run_after_finish(finished_run("succeeded").pk)  # does not raise

    assert "database gone" in caplog.text


def test_a_refreshed_segment_is_announced_with_its_member_count(endpoint):
    ProfileFactory.create_batch(3)
    segment = SegmentFactory(name="Everyone")

    segment_refresh(segment_id=segment.pk)

    (event,) = sent("segment.refreshed")
    assert event["data"]["segment"]["id"] == segment.pk
    assert event["data"]["segment"]["name"] == "Everyone"
    assert event["data"]["segment"]["member_count"] == 3
    assert (event["data"]["segment"]["joined"], event["data"]["segment"]["left"]) == (3, 0)


def test_a_refresh_announces_who_joined_and_who_left(endpoint):
    _staying, leaving = ProfileFactory.create_batch(2)
    segment = SegmentFactory(name="Everyone")
    segment_refresh(segment_id=segment.pk)
    leaving.delete()
    ProfileFactory.create_batch(2)

    segment_refresh(segment_id=segment.pk)

    announced = [event["data"]["segment"] for event in sent("segment.refreshed")]
    counts = sorted((each["member_count"], each["joined"], each["left"]) for each in announced)
    assert counts == [(2, 2, 0), (3, 2, 1)]


def test_a_refresh_that_failed_is_not_announced(endpoint):
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "gone", "operator": "is_not_empty"}]}
    )

    assert segment_refresh(segment_id=segment.pk).status == "failed"
    assert sent("segment.refreshed") == []


def test_a_connection_that_needs_reauthentication_is_announced_once(endpoint):
    connection = ConnectionFactory(display_name="Autopilot EU")

    connection_record_auth_failure(connection_id=connection.pk, message="Key revoked")
    connection_record_auth_failure(connection_id=connection.pk, message="Key revoked")

    (event,) = sent("connection.needs_reauthentication")
    assert event["data"] == {
        "connection": {"id": connection.pk, "name": "Autopilot EU", "type": "autopilot"}
    }


@pytest.mark.guard
def test_a_run_awaiting_approval_is_announced_with_the_guards_numbers(endpoint, finished_run):
    from exports import guard

    run = finished_run("awaiting_approval")
    verdict = guard.judge(
        list_size=40, adds=2, removals=30, thresholds=guard.thresholds_for(run.export)
    )
    ExportRun.objects.filter(pk=run.pk).update(
        list_size=40,
        to_add=2,
        to_remove=30,
        finished_at=None,
        held_because=guard.stored_reasons(verdict),
    )

    export_services.run_after_hold(run.pk)

    (event,) = sent("export_run.awaiting_approval")
    assert event["data"]["export"]["id"] == run.export_id
    assert event["data"]["run"]["id"] == run.pk
    assert event["data"]["run"]["status"] == "awaiting_approval"
    assert event["data"]["run"]["url"].endswith(f"/exports/runs/{run.pk}/")
    guarded = event["data"]["run"]["guard"]
    assert (guarded["list_size"], guarded["adds"], guarded["removals"]) == (40, 2, 30)
    assert guarded["list_size_after"] == 12
    assert guarded["reasons"] == [str(reason) for reason in verdict.reasons]
    assert "more than 10% of the 40 in the list" in guarded["reasons"][0]
    assert sent("export_run.finished") == []


@pytest.mark.guard
def test_a_discarded_run_is_announced_with_who_discarded_it(endpoint, finished_run, alice):
    run = finished_run("awaiting_approval")
    ExportRun.objects.filter(pk=run.pk).update(
        list_size=40, to_add=2, to_remove=30, finished_at=None
    )
    alice.first_name, alice.last_name = "Alice", "Admin"
    alice.save(update_fields=["first_name", "last_name"])

    with TestCase.captureOnCommitCallbacks(execute=True):
        export_services.run_discard(run=run, user=alice)

    (event,) = sent("export_run.discarded")
    run.refresh_from_db()
    assert event["data"]["export"]["id"] == run.export_id
    assert event["data"]["run"]["id"] == run.pk
    assert event["data"]["run"]["status"] == "discarded"
    assert event["data"]["run"]["url"].endswith(f"/exports/runs/{run.pk}/")
    assert event["data"]["run"]["decided_by"] == {"id": alice.pk, "name": "Alice Admin"}
    assert event["data"]["run"]["decided_at"] == run.decided_at.isoformat()
    assert event["data"]["run"]["finished_at"] == run.finished_at.isoformat()
    guarded = event["data"]["run"]["guard"]
    assert (guarded["list_size"], guarded["removals"], guarded["list_size_after"]) == (40, 30, 12)
    assert sent("export_run.finished") == []


@pytest.mark.guard
def test_a_run_discarded_with_its_export_detached_is_announced_without_a_decider(
    endpoint, finished_run
):
    run = finished_run("awaiting_approval")
    ExportRun.objects.filter(pk=run.pk).update(finished_at=None)

    with TestCase.captureOnCommitCallbacks(execute=True):
        export_services.export_detach(export=run.export)

    (event,) = sent("export_run.discarded")
    assert event["data"]["run"]["id"] == run.pk
    assert event["data"]["run"]["decided_by"] is None


def test_a_run_that_is_not_discarded_is_not_announced_as_discarded(endpoint, finished_run):
    for status in ("awaiting_approval", "succeeded"):
        receivers.export_run_discarded(ExportRun, run_id=finished_run(status).pk)

    assert sent("export_run.discarded") == []
