"""Exclusions in the runs (issue 24): never sent in any mode or path, removed by mirror
exports, listed with their rule and counted as "excluded"."""

from __future__ import annotations

import pytest

from exports import engine, exclusions, runs, services
from exports.models import Exclusion, Export, ExportRun, ExportRunFailure, SyncState
from exports.recipients import EXCLUDED_ADDRESS, EXCLUDED_DOMAIN, EXCLUDED_SEGMENT
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db
Status = ExportRun.Status


@pytest.fixture(autouse=True)
def one_batch_at_a_time(settings):
    settings.EXPORT_CONCURRENCY = 1


def run_now(export, **fields) -> ExportRun:
    run = services.run_request(export=export)
    if fields:
        ExportRun.objects.filter(pk=run.pk).update(**fields)
    return engine.execute(run.pk)


@pytest.fixture
def people(everyone):
    return {
        name: ProfileFactory(email=email, first_name=name.title())
        for name, email in [
            ("ann", "ann@example.com"),
            ("bob", "  Bob@Blocked.example "),
            ("cat", "cat@blocked.example"),
            ("dan", "dan@sub.blocked.example"),
            ("eve", "eve@example.com"),
            ("fay", "fay@example.com"),
        ]
    }


@pytest.fixture
def vips(people):
    segment = SegmentFactory(
        name="VIPs",
        rules={
            "match": "all",
            "conditions": [{"field": "email", "operator": "starts_with", "value": "fay"}],
        },
    )
    segment_refresh(segment_id=segment.pk)
    return segment


def exclude_everything(vips):
    exclusions.exclusions_add(kind=Exclusion.Kind.ADDRESS, values=["eve@example.com"])
    exclusions.exclusions_add(kind=Exclusion.Kind.DOMAIN, values=["blocked.example"])
    exclusions.exclusion_add_segment(segment=vips)


def listed(run) -> dict[str, str]:
    return dict(ExportRunFailure.objects.filter(run=run, skipped=True).values_list("email", "code"))


@pytest.mark.parametrize("mode", [Export.SyncMode.ADD_AND_UPDATE, Export.SyncMode.MIRROR])
def test_excluded_members_are_never_sent_and_are_listed_with_their_rule(
    backend, make_export, everyone, people, vips, mode
):
    exclude_everything(vips)
    run = run_now(make_export(everyone, sync_mode=mode))

    assert sorted(backend.pushed) == ["ann@example.com", "dan@sub.blocked.example"]
    assert (run.status, run.excluded, run.skipped, run.added) == (Status.SUCCEEDED, 4, 0, 2)
    assert listed(run) == {
        "  Bob@Blocked.example ": EXCLUDED_DOMAIN,
        "cat@blocked.example": EXCLUDED_DOMAIN,
        "eve@example.com": EXCLUDED_ADDRESS,
        "fay@example.com": EXCLUDED_SEGMENT,
    }
    # Every member is accounted for once.
    assert run.profiles_total == run.sent + run.unchanged + run.skipped + run.excluded + run.failed
    assert runs.unaccounted(run) == 0


def test_a_domain_matches_exactly_not_its_subdomains(backend, make_export, everyone, people):
    exclusions.exclusions_add(kind=Exclusion.Kind.DOMAIN, values=["blocked.example"])
    run_now(make_export(everyone))
    assert "dan@sub.blocked.example" in backend.pushed
    assert "cat@blocked.example" not in backend.pushed


def test_a_mirror_export_removes_excluded_people_already_in_its_list(
    backend, make_export, everyone, people, vips
):
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    assert len(backend.lists["list-1"]) == 6

    exclude_everything(vips)
    run = run_now(export)

    assert sorted(backend.removed) == [
        "bob@blocked.example",
        "cat@blocked.example",
        "eve@example.com",
        "fay@example.com",
    ]
    assert sorted(backend.lists["list-1"]) == ["ann@example.com", "dan@sub.blocked.example"]
    assert (run.removed, run.excluded, run.unchanged, run.sent) == (4, 4, 2, 0)
    assert runs.unaccounted(run) == 0
    assert SyncState.objects.get(export=export, email="eve@example.com").state == (
        SyncState.State.REMOVED
    )

    # Nothing changed since: the next run (the shortcut) counts them excluded again.
    again = run_now(export)
    assert (again.nothing_changed, again.excluded, again.unchanged, again.removed) == (
        True,
        4,
        2,
        0,
    )
    assert len(listed(again)) == 4


def test_an_add_and_update_export_leaves_excluded_people_in_its_list_unsent(
    backend, make_export, everyone, people
):
    export = make_export(everyone)
    run_now(export)
    exclusions.exclusions_add(kind=Exclusion.Kind.ADDRESS, values=["ann@example.com"])
    backend.pushed.clear()

    run = run_now(export)
    assert (run.excluded, run.removed, backend.removed, backend.pushed) == (1, 0, [], [])


def test_an_exclusion_added_after_a_run_is_not_hidden_by_nothing_changed(
    backend, make_export, everyone, people
):
    export = make_export(everyone)
    run_now(export)
    exclusions.exclusions_add(kind=Exclusion.Kind.ADDRESS, values=["ann@example.com"])
    run = run_now(export)
    assert (run.nothing_changed, run.excluded) == (False, 1)

    Exclusion.objects.get(value="ann@example.com").delete()
    backend.pushed.clear()
    run = run_now(export)
    assert (run.nothing_changed, run.excluded, run.unchanged) == (False, 0, 6)


def test_resend_everything_never_sends_an_excluded_person(backend, make_export, everyone, people):
    export = make_export(everyone)
    run_now(export)
    exclusions.exclusions_add(kind=Exclusion.Kind.ADDRESS, values=["ann@example.com"])
    services.export_request_resend(export=export)
    backend.pushed.clear()

    run = run_now(export)
    assert "ann@example.com" not in backend.pushed
    assert (run.updated, run.excluded) == (5, 1)


def test_retry_failed_records_never_sends_an_excluded_person(
    backend, make_export, everyone, people
):
    ProfileFactory(email="reject@example.com")
    export = make_export(everyone)
    first = run_now(export)
    assert first.failed == 1
    exclusions.exclusions_add(kind=Exclusion.Kind.ADDRESS, values=["reject@example.com"])
    backend.refusing = False
    backend.pushed.clear()

    retry = services.run_retry_failed(run=first, user=None)
    retry = engine.execute(retry.pk)
    assert "reject@example.com" not in backend.pushed
    assert retry.excluded == 1


def test_a_segment_exclusion_excludes_another_profile_with_the_same_address(
    backend, make_export, everyone, people, vips
):
    ProfileFactory(email="FAY@example.com ")  # a second profile, outside the VIP segment
    exclusions.exclusion_add_segment(segment=vips)
    run = run_now(make_export(everyone))
    assert "fay@example.com" not in backend.pushed
    assert run.excluded == 2


def test_the_preview_counts_exclusions_by_rule(make_export, everyone, people, vips):
    exclude_everything(vips)
    preview = services.export_preview(export=make_export(everyone))
    assert (preview["excluded"], preview["skipped"]) == (4, 0)
    assert {row["code"]: row["count"] for row in preview["excluded_by_reason"]} == {
        EXCLUDED_DOMAIN: 2,
        EXCLUDED_ADDRESS: 1,
        EXCLUDED_SEGMENT: 1,
    }
