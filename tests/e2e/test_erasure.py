"""End to end with a real worker: a person erased through the API while exports to all four
services are running is deleted at every service (from the whole Mailchimp audience, though the
export sends to one tag of it), and the segment's member count drops at once."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.tokens import token_create
from exports import services
from exports.models import Erasure, ErasureExport, Export, ExportRun
from fakes.testing import running_fake
from segments.models import Segment, SegmentMember
from tests.connections import test_backend_contract as contract
from tests.e2e.conftest import wait_until
from tests.e2e.test_export_runs import (
    EXPECTED,
    _connection,
    autopilot_list_id,
    cm_connection,
    cm_list_id,
    finished,
    make_export,
    people,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
__all__ = ["cm_connection", "people"]  # fixtures shared with the other end-to-end tests
ERASED = "person5@example.com"
ORTTO_AUDIENCE = "a00000000000000000000001"
#: Every call to the services waits this long, so that the runs are still going when the
#: person is erased (the test waits for that; it measures nothing).
LATENCY_MS = 700


@pytest.fixture(autouse=True)
def mc_fake(settings, monkeypatch):
    """Before the worker starts, so that its environment points at this fake."""
    with running_fake("mailchimp") as fake:
        settings.MAILCHIMP_API_URL = fake.base_url
        monkeypatch.setenv("MAILCHIMP_API_URL", fake.base_url)
        yield fake


@pytest.fixture(autouse=True)
def ortto_fake(settings, monkeypatch):
    with running_fake("ortto", rate_limit=20) as fake:
        settings.ORTTO_API_URLS = {**settings.ORTTO_API_URLS, "global": fake.base_url}
        monkeypatch.setenv("ORTTO_API_URL_GLOBAL", fake.base_url)
        monkeypatch.setenv("ORTTO_RATE_LIMIT", "20")
        yield fake


@pytest.fixture
def api(alice) -> APIClient:
    client = APIClient()
    _token, raw = token_create(user=alice, name="e2e")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_person_erased_while_exports_run_leaves_every_list(
    worker, cm_fake, autopilot_fake, mc_fake, ortto_fake, cm_connection, people, alice, api
):
    mc_audience = next(iter(mc_fake.state(summary=True)["accounts"][0]["audiences"]))
    connections = {
        "mailchimp": _connection("mailchimp", {"api_key": "demo0mailchimp0key-us21"}, alice),
        "ortto": _connection("ortto", {"api_key": "demo-ortto-key", "region": "global"}, alice),
        "autopilot": _connection("autopilot", {"api_key": "demo-autopilot-key"}, alice),
    }
    exports = {
        "campaign_monitor": make_export(cm_connection, cm_list_id(cm_fake), people, alice),
        "autopilot": make_export(
            connections["autopilot"], autopilot_list_id(autopilot_fake), people, alice
        ),
        "mailchimp": make_export(connections["mailchimp"], f"{mc_audience}#VIP", people, alice),
        "ortto": make_export(connections["ortto"], ORTTO_AUDIENCE, people, alice),
    }
    Export.objects.filter(pk=exports["ortto"].pk).update(sync_mode=Export.SyncMode.MIRROR)
    fakes = {
        "campaign_monitor": cm_fake,
        "autopilot": autopilot_fake,
        "mailchimp": mc_fake,
        "ortto": ortto_fake,
    }
    for fake in fakes.values():
        fake.configure(latency_ms=LATENCY_MS)
    runs = [services.run_request(export=export, user=alice) for export in exports.values()]
    wait_until(
        lambda: ExportRun.objects.filter(
            status=ExportRun.Status.RUNNING, recipients_ready=True
        ).exists(),
        message="a run that computed its recipients (the person among them)",
    )

    response = api.post(
        "/api/v1/profiles/erase/?propagate=now", {"customer_id": "c005"}, format="json"
    )

    assert response.status_code == 201, response.content
    # Counts are right at once, not at the next refresh.
    assert Segment.objects.get(pk=people.pk).member_count == 202
    assert SegmentMember.objects.filter(segment=people).count() == 202
    for fake in fakes.values():
        fake.configure(latency_ms=0)
    for run in runs:
        assert finished(run).status == ExportRun.Status.SUCCEEDED, worker.log()[-3000:]
    erasure_id = response.json()["id"]
    wait_until(
        lambda: (
            set(
                ErasureExport.objects.filter(erasure_id=erasure_id).values_list("status", flat=True)
            )
            == {ErasureExport.Status.CONFIRMED}
        ),
        message="every export to confirm the erasure",
    )
    records = ErasureExport.objects.filter(erasure_id=erasure_id)
    assert sorted(records.values_list("export_id", flat=True)) == sorted(
        export.pk for export in exports.values()
    )
    # A run that was going had the person among its recipients and delivered them after the
    # erasure: what it delivered was deleted too (when it ended, or by the erasure's task).
    erased_at = Erasure.objects.get(pk=erasure_id).requested_at
    assert ExportRun.objects.filter(
        pk__in=[run.pk for run in runs], started_at__lt=erased_at, sent=200
    ).exists()
    contracts = {
        "campaign_monitor": contract.TestCampaignMonitorBackend,
        "autopilot": contract.TestAutopilotBackend,
        "mailchimp": contract.MailchimpContract,
        "ortto": contract.OrttoContract,
    }
    lists = {
        kind: contracts[kind].members(fakes[kind], export.list_id)
        for kind, export in exports.items()
    }
    assert lists == dict.fromkeys(fakes, EXPECTED - {ERASED}), worker.log()[-3000:]
    held = {
        kind: contracts[kind].holds(fakes[kind], export.list_id, ERASED)
        for kind, export in exports.items()
    }
    assert held == dict.fromkeys(fakes, False)
