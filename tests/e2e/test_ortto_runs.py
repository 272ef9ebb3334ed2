"""End to end with a real worker: exports to the Ortto fake, address by address."""

from __future__ import annotations

import pytest

from connections.models import Connection
from exports import services
from exports.models import Export, ExportRun
from fakes.testing import running_fake
from segments.models import Profile
from segments.services import segment_refresh
from tests.e2e.test_export_runs import EXPECTED, _connection, finished, make_export, people

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
Status = ExportRun.Status
AUDIENCE = "a00000000000000000000001"
__all__ = ["people"]


@pytest.fixture(autouse=True)
def ortto_fake(settings, monkeypatch):
    with running_fake("ortto", rate_limit=20) as fake:
        settings.ORTTO_API_URLS = {**settings.ORTTO_API_URLS, "global": fake.base_url}
        monkeypatch.setenv("ORTTO_API_URL_GLOBAL", fake.base_url)
        monkeypatch.setenv("ORTTO_RATE_LIMIT", "20")
        yield fake


@pytest.fixture
def ortto_connection(alice):
    return _connection("ortto", {"api_key": "demo-ortto-key", "region": "global"}, alice)


def audience_members(fake) -> set[str]:
    return set(fake.state(list=AUDIENCE)["accounts"][0]["audiences"][AUDIENCE]["members"])


def test_mirror_sets_and_clears_the_marker_and_never_archives(
    worker, ortto_fake, ortto_connection, people, alice
):
    export = make_export(ortto_connection, AUDIENCE, people, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    first = finished(services.run_request(export=export, user=alice))
    assert (first.status, first.sent) == (Status.SUCCEEDED, 200), worker.log()[-3000:]
    assert audience_members(ortto_fake) == EXPECTED

    merges = ortto_fake.state(summary=True)["stats"]["requests_by_endpoint"][
        "POST /v1/person/merge"
    ]
    unchanged = finished(services.run_request(export=export, user=alice))
    stats = ortto_fake.state(summary=True)["stats"]["requests_by_endpoint"]
    assert (unchanged.sent, stats["POST /v1/person/merge"]) == (0, merges)

    Profile.objects.filter(customer_id__in=["c010", "c011"]).delete()
    segment_refresh(segment_id=people.pk)
    third = finished(services.run_request(export=export, user=alice))
    assert third.removed == 2, worker.log()[-3000:]
    assert audience_members(ortto_fake) == EXPECTED - {
        "person10@example.com",
        "person11@example.com",
    }
    person = ortto_fake.state(email="person10@example.com")["accounts"][0]["people"]
    assert person["person10@example.com"]["archived"] is False


@pytest.mark.parametrize(
    "faults",
    [
        {"burst_429": 5, "burst_429_reset": 1},
        {"error_next": 3, "error_status": 502},
        {"drop_next": 2},
    ],
    ids=["429-storm-try-in-seconds", "5xx", "dropped"],
)
def test_a_run_rides_out_the_faults_with_nobody_lost(
    worker, ortto_fake, ortto_connection, people, alice, faults
):
    ortto_fake.configure(**faults)
    run = finished(
        services.run_request(
            export=make_export(ortto_connection, AUDIENCE, people, alice), user=alice
        ),
        timeout=90,
    )
    assert (run.status, run.sent, run.failed) == (Status.SUCCEEDED, 200, 0), worker.log()[-3000:]
    assert audience_members(ortto_fake) == EXPECTED


def test_a_revoked_key_fails_the_run_and_asks_for_a_new_key(
    worker, ortto_fake, ortto_connection, people, alice
):
    ortto_fake.revoke(api_key="demo-ortto-key")
    run = finished(
        services.run_request(
            export=make_export(ortto_connection, AUDIENCE, people, alice), user=alice
        )
    )
    assert run.status == Status.FAILED
    ortto_connection.refresh_from_db()
    assert ortto_connection.status == Connection.Status.NEEDS_REAUTHENTICATION
