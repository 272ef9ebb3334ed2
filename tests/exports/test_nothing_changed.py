"""A run whose inputs did not change since the last full run computes no recipients (issue 16)."""

from __future__ import annotations

import re

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from exports import engine, runs, services
from exports.erasures import erasure_request
from exports.models import Export, ExportRun, ExportRunFailure, FieldMapping
from segments.models import SegmentMember
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db
Status = ExportRun.Status


@pytest.fixture(autouse=True)
def one_batch_at_a_time(settings):
    settings.EXPORT_CONCURRENCY = 1


@pytest.fixture
def members(everyone):
    profiles = [
        ProfileFactory(email=f"p{number}@example.com", first_name=f"F{number}")
        for number in range(5)
    ]
    ProfileFactory(email="", customer_id="no-address")
    return profiles


def run_now(export: Export) -> ExportRun:
    return engine.execute(services.run_request(export=export).pk)


def outcome(run: ExportRun) -> dict:
    names = ("profiles_total", "added", "updated", "unchanged", "removed", "skipped", "failed")
    return {"nothing_changed": run.nothing_changed} | {name: getattr(run, name) for name in names}


def test_a_run_after_a_full_delivery_with_nothing_changed_computes_nothing(
    backend, make_export, everyone, members
):
    export = make_export(everyone)
    first = run_now(export)
    calls = backend.calls

    with CaptureQueriesContext(db_connection) as queries:
        second = run_now(export)

    assert second.status == Status.SUCCEEDED
    assert backend.calls == calls
    assert outcome(second) == {
        "nothing_changed": True,
        "profiles_total": 6,
        "added": 0,
        "updated": 0,
        "unchanged": 5,
        "removed": 0,
        "skipped": 1,
        "failed": 0,
    }
    assert runs.unaccounted(second) == 0
    statements = [query["sql"] for query in queries.captured_queries]
    assert not [sql for sql in statements if re.match(r"\s*(CREATE|DROP TABLE [^I])", sql, re.I)]
    member_table = SegmentMember._meta.db_table
    assert not [sql for sql in statements if member_table in sql]
    # Claim, fingerprint (the mapping rows, the exclusions and their segments included), the
    # last full run, skipped members, counts, end and what follows it.
    assert len(statements) <= 28, "\n".join(statements)
    skipped = ExportRunFailure.objects.filter(run=second, skipped=True)
    assert list(skipped.values_list("customer_id", "code")) == [("no-address", "missing_email")]
    assert Export.objects.get(pk=export.pk).inputs_run_id == first.pk


def test_the_run_page_says_nothing_changed(backend, make_export, everyone, members, client, alice):
    export = make_export(everyone)
    run_now(export)
    second = run_now(export)
    client.force_login(alice)

    page = client.get(f"/exports/runs/{second.pk}/").content.decode()

    assert "Nothing changed since the export" in page


@pytest.mark.parametrize(
    "change",
    ["profile edited", "profile added", "setting changed", "segment added", "resend"],
)
def test_any_change_to_what_it_sends_makes_the_run_compute_again(
    backend, make_export, everyone, members, change
):
    export = make_export(everyone)
    run_now(export)
    if change == "profile edited":
        members[2].first_name = "Changed"
        members[2].save()
    elif change == "profile added":
        ProfileFactory(email="new@example.com")
        segment_refresh(segment_id=everyone.pk)
    elif change == "setting changed":
        FieldMapping.objects.filter(export=export, destination_key="last_name").delete()
    elif change == "segment added":
        vip = SegmentFactory(name="VIP", rules=everyone.rules)
        segment_refresh(segment_id=vip.pk)
        export.segments.add(vip)
    else:
        services.export_request_resend(export=export)

    run = run_now(Export.objects.get(pk=export.pk))

    assert run.status == Status.SUCCEEDED
    assert not run.nothing_changed
    assert runs.unaccounted(run) == 0
    assert run.added + run.updated + run.removed + run.unchanged > 0


def test_an_export_without_segments_is_skipped_with_the_reason(backend, make_export, members):
    export = make_export()

    run = run_now(export)

    assert run.status == Status.SKIPPED
    assert "has no segments" in run.last_error
    assert backend.calls == 0


def test_a_run_after_refusals_sends_again(backend, make_export, everyone, members):
    ProfileFactory(email="reject@example.com")
    export = make_export(everyone)
    first = run_now(export)
    assert (first.status, first.failed) == (Status.COMPLETED_WITH_WARNINGS, 1)

    second = run_now(export)

    assert not second.nothing_changed
    assert second.failed == 1  # sent again, refused again
    assert backend.calls == 3  # two batches, then the refused record alone


@pytest.mark.django_db(transaction=True)
def test_a_run_cancelled_half_way_makes_the_next_one_compute_again(
    backend, make_export, everyone, members, monkeypatch
):
    monkeypatch.setattr("exports.services._enqueue", lambda run_id: None)  # run it here instead
    export = make_export(everyone)
    run_now(export)
    for member in members:
        member.first_name = "Changed"
        member.save()
    interrupted = services.run_request(export=export)
    backend.before_push = lambda _backend: services.run_cancel(run=interrupted)
    assert engine.execute(interrupted.pk).status == Status.CANCELLED
    backend.before_push = None

    run = run_now(export)

    assert not run.nothing_changed
    assert run.updated == 2  # the batch of three went before the run stopped
    assert run_now(export).nothing_changed


def test_an_erasure_makes_the_next_run_compute_its_recipients_and_then_delete_the_person(
    backend, make_export, everyone, members, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr("exports.erasures._enqueue_propagation", lambda *ids: queued.append(ids))
    export = make_export(everyone, sync_mode=Export.SyncMode.ADD_AND_UPDATE)
    run_now(export)
    members[1].delete()  # the profile went earlier; only the address is erased now
    run_now(export)

    erasure = erasure_request(user=None, email="p1@example.com")
    with django_capture_on_commit_callbacks() as callbacks:
        run = run_now(export)
    for callback in callbacks[1:]:  # the first starts the run, which ran already
        callback()

    assert not run.nothing_changed
    assert run.removed == 0  # the erasure deletes the person at the service, after the run
    assert queued == [(erasure.pk, run.pk)]


def test_a_retry_is_not_the_last_full_run(backend, make_export, everyone, members):
    ProfileFactory(email="reject@example.com")
    export = make_export(everyone)
    first = run_now(export)
    retry = engine.execute(services.run_retry_failed(run=first, user=None).pk)

    assert retry.retry_of_id == first.pk
    assert Export.objects.get(pk=export.pk).inputs_run_id is None
    assert not run_now(export).nothing_changed
