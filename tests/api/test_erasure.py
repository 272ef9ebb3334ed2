"""Erasure against both fakes over HTTP: the person is deleted at the service (Celery eager,
in this process) when the export's next run ends, whatever the sync mode, or at once with
``?propagate=now``."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from connections.models import Connection
from connections.services import credentials_encrypt
from exports import services
from exports.models import ErasureExport, Export, SyncState
from fakes.testing import running_fake
from segments.services import segment_refresh
from tests.connections import test_backend_contract as contract
from tests.factories import ProfileFactory, SegmentFactory

# The engine sends from threads with connections of their own: they must see the rows.
pytestmark = pytest.mark.django_db(transaction=True)
ERASE = "/api/v1/profiles/erase/"


@pytest.fixture
def cm(settings):
    with running_fake("campaign_monitor") as fake:
        settings.CAMPAIGN_MONITOR_API_URL = fake.base_url
        token = {"access_token": "t-access", "refresh_token": "t-refresh", "expires_in": 3600}
        fake.seed(accounts=[{"id": "demo", "tokens": [token]}])
        yield fake


@pytest.fixture
def autopilot_fake(settings):
    with running_fake("autopilot", rate_limit=0) as fake:
        settings.AUTOPILOT_API_URL = fake.base_url
        yield fake


def cm_export(fake, alice, segment, sync_mode) -> Export:
    credentials = {
        "access_token": "t-access",
        "refresh_token": "t-refresh",
        "expires_in": 3600,
        "expires_at": time.time() + 3600,
    }
    list_id = next(iter(fake.state()["clients"].values()))["list_ids"][0]
    return _export("campaign_monitor", credentials, list_id, alice, segment, sync_mode)


def autopilot_export(fake, alice, segment, sync_mode) -> Export:
    list_id = next(iter(fake.state()["accounts"][0]["lists"]))
    return _export(
        "autopilot", {"api_key": "demo-autopilot-key"}, list_id, alice, segment, sync_mode
    )


def _export(kind, credentials, list_id, alice, segment, sync_mode) -> Export:
    connection = Connection.objects.create(
        kind=kind,
        display_name=kind,
        consent_given_by=alice,
        consent_given_at=timezone.now(),
        encrypted_credentials=credentials_encrypt(credentials),
    )
    export = Export.objects.create(
        display_name=f"To {kind}", connection=connection, list_id=list_id, sync_mode=sync_mode
    )
    export.segments.set([segment])
    return export


def on_list(fake, export: Export) -> set[str]:
    """Who is on the export's list, read from the fake's own state."""
    kind = {
        "campaign_monitor": contract.TestCampaignMonitorBackend,
        "autopilot": contract.TestAutopilotBackend,
    }[export.connection.kind]
    return kind.members(fake, export.list_id)


def holds(fake, export: Export, email: str) -> bool:
    """Whether the service still keeps the person, read from the fake's own state."""
    kind = {
        "campaign_monitor": contract.TestCampaignMonitorBackend,
        "autopilot": contract.TestAutopilotBackend,
    }[export.connection.kind]
    return kind.holds(fake, export.list_id, email)


def run(export: Export):
    for segment in export.segments.all():
        segment_refresh(segment_id=segment.pk)
    queued = services.run_request(export=export)  # runs at commit: Celery is eager in tests
    queued.refresh_from_db()
    assert not queued.is_active
    return queued


@pytest.fixture
def people():
    for number in range(3):
        ProfileFactory(customer_id=f"p{number}", email=f"person{number}@example.com")
    return SegmentFactory()


@pytest.mark.parametrize("kind", ["campaign_monitor", "autopilot"])
@pytest.mark.parametrize("sync_mode", ["add_update", "mirror"])
def test_an_erased_person_is_deleted_at_the_service_when_the_next_run_ends(
    request, kind, sync_mode, api_alice, alice, people
):
    fake = request.getfixturevalue("cm" if kind == "campaign_monitor" else "autopilot_fake")
    make = cm_export if kind == "campaign_monitor" else autopilot_export
    export = make(fake, alice, people, sync_mode)
    run(export)
    assert "person1@example.com" in on_list(fake, export)

    body = api_alice.post(ERASE, {"customer_id": "p1"}, format="json").json()
    assert [(e["export"], e["confirmed"]) for e in body["exports"]] == [(export.pk, False)]
    progress = f"/api/v1/profiles/erasures/{body['id']}/"
    assert [e["status"] for e in api_alice.get(progress).json()["exports"]] == ["pending"]

    second = run(export)
    after = api_alice.get(progress).json()
    assert [(e["status"], e["confirmed_by_run"]) for e in after["exports"]] == [
        ("confirmed", second.pk)
    ]
    assert on_list(fake, export) == {"person0@example.com", "person2@example.com"}
    assert not holds(fake, export, "person1@example.com")
    record = ErasureExport.objects.get()
    assert (record.status, record.confirmed_by_run_id, record.encrypted_address) == (
        ErasureExport.Status.CONFIRMED,
        second.pk,
        "",
    )
    assert not SyncState.objects.filter(export=export, email="person1@example.com").exists()


def test_with_propagate_now_the_person_is_deleted_at_once(api_alice, alice, people, autopilot_fake):
    export = autopilot_export(autopilot_fake, alice, people, "add_update")
    run(export)
    response = api_alice.post(
        ERASE + "?propagate=now", {"email": "person2@example.com"}, format="json"
    )
    assert response.status_code == 201
    assert on_list(autopilot_fake, export) == {"person0@example.com", "person1@example.com"}
    assert not holds(autopilot_fake, export, "person2@example.com")
    record = ErasureExport.objects.get()
    assert record.confirmed_at is not None and record.confirmed_by_run_id is None
    assert run(export).removed == 0


def test_someone_imported_again_after_an_erasure_is_added_as_new(
    api_alice, alice, people, autopilot_fake
):
    export = autopilot_export(autopilot_fake, alice, people, "add_update")
    run(export)
    api_alice.post(ERASE, {"customer_id": "p0"}, format="json")
    api_alice.post(
        "/api/v1/profiles/bulk/",
        {"records": [{"customer_id": "p0", "email": "person0@example.com"}]},
        format="json",
    )
    again = run(export)
    assert (again.added, again.removed) == (1, 0)
    assert "person0@example.com" in on_list(autopilot_fake, export)
    assert ErasureExport.objects.get().confirmed_at is not None


def test_an_erasure_that_does_not_exist_is_a_404_problem(api_alice):
    response = api_alice.get("/api/v1/profiles/erasures/999999/")
    assert response.status_code == 404
    assert response.json()["detail"] == "There is no erasure with this id."
