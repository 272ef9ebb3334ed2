"""Exports, runs and connections through the API, with the pages' object checks."""

from __future__ import annotations

import pytest

from exports.models import Export, ExportRun, ExportRunFailure
from tests.connections.factories import API_KEY, ConnectionFactory
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db
EXPORTS = "/api/v1/exports/"
SHARED = "administrators_and_contributors"


@pytest.fixture
def shared():
    return ConnectionFactory(who_can_use=SHARED)


@pytest.fixture
def admins_only():
    return ConnectionFactory(who_can_use="administrators")


def new_export(connection, segment, **fields) -> dict:
    return {
        "display_name": "Newsletter",
        "connection": connection.pk,
        "list_id": "list-1",
        "segments": [segment.pk],
        **fields,
    }


def make_export(connection) -> Export:
    export = Export.objects.create(display_name="N", connection=connection, list_id="list-1")
    export.segments.set([SegmentFactory()])
    return export


def test_a_contributor_creates_an_export_on_a_shared_connection(api_bob, shared):
    response = api_bob.post(EXPORTS, new_export(shared, SegmentFactory()), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["connection"], body["list_id"], body["sync_mode"]) == (
        shared.pk,
        "list-1",
        "add_update",
    )
    # The service is unreachable here: saved, with the page's warning.
    assert body["warnings"] and "could not be checked" in body["warnings"][0]


def test_a_contributor_cannot_use_an_administrators_connection(api_bob, admins_only):
    response = api_bob.post(EXPORTS, new_export(admins_only, SegmentFactory()), format="json")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "connection" and "only administrators" in error["message"]
    assert not Export.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "", {"display_name": "Mine now"}),
        ("delete", "", None),
        ("post", "run/", None),
        ("post", "schedule/", {"enabled": False}),
        ("post", "resend/", None),
    ],
)
def test_contributors_only_read_exports_on_administrators_connections(
    api_bob, api_alice, admins_only, method, path, body
):
    export = make_export(admins_only)
    url = f"{EXPORTS}{export.pk}/{path}"
    refused = getattr(api_bob, method)(url, body, format="json")
    assert refused.status_code == 403
    assert "a connection only administrators may use" in refused.json()["detail"]
    assert api_bob.get(f"{EXPORTS}{export.pk}/").status_code == 200
    assert getattr(api_alice, method)(url, body, format="json").status_code < 300


def test_patch_keeps_what_it_does_not_send(api_bob, shared):
    export = make_export(shared)
    response = api_bob.patch(f"{EXPORTS}{export.pk}/", {"sync_mode": "mirror"}, format="json")
    assert response.status_code == 200, response.content
    export.refresh_from_db()
    assert (export.sync_mode, export.display_name, export.list_id) == ("mirror", "N", "list-1")


def test_run_is_queued_once_and_cancelled(api_bob, shared):
    export = make_export(shared)
    run = api_bob.post(f"{EXPORTS}{export.pk}/run/")
    assert run.status_code == 202 and run.json()["status"] == "queued"
    again = api_bob.post(f"{EXPORTS}{export.pk}/run/")
    assert again.status_code == 409
    assert again.json()["type"] == "urn:audience-relay:problem:conflict"
    cancelled = api_bob.post(f"{EXPORTS}{export.pk}/cancel/").json()
    assert (cancelled["cancelled"], cancelled["run"]["status"]) == (True, "cancelled")
    assert api_bob.post(f"{EXPORTS}{export.pk}/cancel/").json() == {
        "cancelled": False,
        "run": None,
    }


def test_schedule_and_resend(api_bob, shared):
    export = make_export(shared)
    off = api_bob.post(f"{EXPORTS}{export.pk}/schedule/", {"enabled": False}, format="json")
    assert off.json()["schedule_enabled"] is False
    assert api_bob.post(f"{EXPORTS}{export.pk}/resend/").json()["resend_next_run"] is True
    export.refresh_from_db()
    assert (export.schedule_enabled, export.resend_next_run) == (False, True)


def test_preview_says_what_the_next_run_would_do(api_charlie, shared):
    from tests.factories import ProfileFactory

    ProfileFactory(email="a@example.com")
    export = make_export(shared)
    from segments.services import segment_refresh

    segment_refresh(segment_id=export.segments.get().pk)
    preview = api_charlie.get(f"{EXPORTS}{export.pk}/preview/").json()
    assert (preview["members"], preview["added"]) == (1, 1)
    assert not ExportRun.objects.filter(export=export).exists()


def test_a_run_shows_live_counts_and_its_failures(api_charlie, api_bob, shared):
    export = make_export(shared)
    run = ExportRun.objects.create(
        export=export, trigger="user", status="failed", profiles_total=10, sent=4, failed=2
    )
    for number in range(3):
        ExportRunFailure.objects.create(
            run=run, customer_id=f"c{number}", email=f"x{number}@e.com", code="1", reason="Bad"
        )
    body = api_charlie.get(f"/api/v1/runs/{run.pk}/").json()
    assert (body["percent"], body["sent"], body["failed"], body["eta_seconds"]) == (60, 4, 2, None)
    listed = api_charlie.get(f"/api/v1/runs/?export={export.pk}").json()["results"]
    assert [r["id"] for r in listed] == [run.pk]
    failures = api_charlie.get(f"/api/v1/runs/{run.pk}/failures/?page_size=2").json()
    assert [f["customer_id"] for f in failures["results"]] == ["c0", "c1"]
    assert failures["results"][0]["reason"] == "Bad"
    csv = api_charlie.get(f"/api/v1/runs/{run.pk}/failures.csv")
    assert csv.status_code == 200, csv.content
    assert len(b"".join(csv.streaming_content).splitlines()) == 4
    retry = api_bob.post(f"/api/v1/runs/{run.pk}/retry/")
    assert retry.status_code == 202 and retry.json()["retry_of"] == run.pk


def test_a_runs_failures_take_the_run_pages_show_filter(api_charlie, shared):
    run = ExportRun.objects.create(export=make_export(shared), trigger="user", status="failed")
    ExportRunFailure.objects.create(run=run, email="a@e.com", code="1", reason="Bad")
    for email, code in (("b@e.com", "opted_out"), ("c", "invalid_email")):
        ExportRunFailure.objects.create(run=run, email=email, code=code, skipped=True)
    url = f"/api/v1/runs/{run.pk}/failures"

    def shown(show: str) -> list[str]:
        return [f["email"] for f in api_charlie.get(f"{url}/?show={show}").json()["results"]]

    assert (shown(""), shown("refused"), shown("skipped"), shown("opted_out")) == (
        ["a@e.com", "b@e.com", "c"],
        ["a@e.com"],
        ["b@e.com", "c"],
        ["b@e.com"],
    )
    csv = api_charlie.get(f"{url}.csv?show=invalid_email")
    assert len(b"".join(csv.streaming_content).splitlines()) == 2
    refused = api_charlie.get(f"{url}/?show=everything")
    assert refused.status_code == 400
    assert "Leave it out, or give one of: refused, skipped," in refused.content.decode()


def test_connections_never_show_a_secret_and_contributors_see_only_shared_ones(
    api_bob, api_charlie, shared, admins_only
):
    response = api_bob.get("/api/v1/connections/")
    assert [c["id"] for c in response.json()["results"]] == [shared.pk]
    assert API_KEY not in response.content.decode()
    assert "credentials" not in response.content.decode()
    assert api_bob.get(f"/api/v1/connections/{admins_only.pk}/").status_code == 404
    assert api_charlie.get("/api/v1/connections/").status_code == 403


def test_testing_a_connection_runs_its_named_steps(api_alice, shared):
    body = api_alice.post(f"/api/v1/connections/{shared.pk}/test/").json()
    assert body["passed"] is False  # the service is unreachable in tests
    assert body["steps"][0]["status"] == "failed" and body["steps"][0]["message"]
    assert body["connection"]["status"] == "failing"
    assert API_KEY not in str(body)
