"""Approve and Discard a run awaiting approval through the API (issue 26)."""

from __future__ import annotations

import pytest
from django.test import TestCase

from audit.actions import AuditAction
from audit.models import AuditEntry
from exports.models import Export, ExportRun
from exports.recipients import RecipientTable
from tests.connections.factories import ConnectionFactory
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db
RUNS = "/api/v1/runs/"
Status = ExportRun.Status


@pytest.fixture
def held(monkeypatch) -> ExportRun:
    """A run the guard held: its numbers kept; the engine is not needed to approve it."""
    export = Export.objects.create(
        display_name="Newsletter",
        connection=ConnectionFactory(who_can_use="administrators_and_contributors"),
        list_id="list-1",
    )
    export.segments.set([SegmentFactory()])
    queued: list[int] = []
    monkeypatch.setattr("exports.services._enqueue", queued.append)
    run = ExportRun.objects.create(
        export=export,
        trigger="schedule",
        status=Status.AWAITING_APPROVAL,
        list_size=40,
        to_add=2,
        to_remove=30,
        recipients_ready=True,
    )
    run.queued = queued  # type: ignore[attr-defined]
    return run


def test_the_run_shows_the_guards_numbers(api_charlie, held):
    body = api_charlie.get(f"{RUNS}{held.pk}/").json()
    assert body["status"] == "awaiting_approval"
    assert (body["list_size"], body["to_add"], body["to_remove"], body["list_size_after"]) == (
        40,
        2,
        30,
        12,
    )


def test_approve_queues_the_run_again_and_names_the_approver(api_bob, bob, held):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api_bob.post(f"{RUNS}{held.pk}/approve/")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["decided_by"] == bob.pk
    assert held.queued == [held.pk]
    assert AuditEntry.objects.get(action=AuditAction.RUN_APPROVED).actor == bob


def test_discard_ends_the_run_and_sends_nothing(api_alice, held):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api_alice.post(f"{RUNS}{held.pk}/discard/")
    assert response.status_code == 200
    assert response.json()["status"] == "discarded"
    assert held.queued == []
    assert not RecipientTable(held).exists()


def test_a_run_that_does_not_wait_is_refused_with_409(api_alice, held):
    ExportRun.objects.filter(pk=held.pk).update(status=Status.SUCCEEDED)
    for action in ("approve", "discard"):
        response = api_alice.post(f"{RUNS}{held.pk}/{action}/")
        assert response.status_code == 409
        assert "does not await approval" in response.json()["detail"]


def test_a_viewer_may_not_approve_or_discard(api_charlie, held):
    for action in ("approve", "discard"):
        assert api_charlie.post(f"{RUNS}{held.pk}/{action}/").status_code == 403
    held.refresh_from_db()
    assert held.status == Status.AWAITING_APPROVAL


def test_a_contributor_may_not_decide_on_an_administrators_connection(api_bob, held):
    held.export.connection.who_can_use = "administrators"
    held.export.connection.save()
    assert api_bob.post(f"{RUNS}{held.pk}/approve/").status_code == 403


def test_the_export_takes_its_own_thresholds_and_blank_for_the_defaults(api_alice, held):
    export = held.export
    response = api_alice.patch(
        f"/api/v1/exports/{export.pk}/",
        {"guard_max_removal_percent": 25, "guard_max_add_factor": 4},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["guard_max_removal_percent"] == 25
    assert response.json()["guard_max_removals"] is None
    response = api_alice.patch(
        f"/api/v1/exports/{export.pk}/", {"guard_max_removal_percent": 101}, format="json"
    )
    assert response.status_code == 400
    assert "guard_max_removal_percent" in str(response.json())
