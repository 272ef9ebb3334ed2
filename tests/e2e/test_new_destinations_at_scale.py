"""End to end at scale: 100,000 demo profiles (with missing, invalid and shared addresses) to
the Mailchimp and the Ortto fakes through a real worker; every address compared."""

from __future__ import annotations

import pytest

from exports import services
from exports.models import Export, ExportRun, SyncState
from fakes.testing import running_fake
from segments.demo import ATTRIBUTE_TYPES, demo_profiles
from segments.importing import import_records
from segments.services import segment_refresh
from tests.e2e.test_export_runs import _connection, finished, make_export
from tests.factories import SegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
Status = ExportRun.Status
PROFILES = 100_000


@pytest.fixture(autouse=True)
def fakes(settings, monkeypatch):
    with running_fake("mailchimp") as mailchimp, running_fake("ortto", rate_limit=200) as ortto:
        settings.MAILCHIMP_API_URL = mailchimp.base_url
        settings.ORTTO_API_URLS = {**settings.ORTTO_API_URLS, "global": ortto.base_url}
        monkeypatch.setenv("MAILCHIMP_API_URL", mailchimp.base_url)
        monkeypatch.setenv("ORTTO_API_URL_GLOBAL", ortto.base_url)
        monkeypatch.setenv("ORTTO_RATE_LIMIT", "200")
        yield mailchimp, ortto


@pytest.fixture
def everyone():
    import_records(demo_profiles(PROFILES), ATTRIBUTE_TYPES)
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "customer_id", "operator": "is_not_empty"}]}
    )
    return segment_refresh(segment_id=segment.pk)


def confirmed(export: Export) -> set[str]:
    states = SyncState.objects.filter(export=export, state=SyncState.State.IN_LIST)
    return set(states.values_list("email", flat=True))


def test_100000_profiles_reach_mailchimp_and_ortto_with_nobody_lost(worker, fakes, everyone, alice):
    mailchimp, ortto = fakes
    audience = next(iter(mailchimp.state(summary=True)["accounts"][0]["audiences"]))
    to_mailchimp = make_export(
        _connection("mailchimp", {"api_key": "demo0mailchimp0key-us21"}, alice),
        audience,
        everyone,
        alice,
    )
    run = finished(services.run_request(export=to_mailchimp, user=alice), timeout=600)
    assert (run.status, run.profiles_total, run.failed) == (Status.SUCCEEDED, PROFILES, 0)
    assert run.sent + run.skipped == PROFILES
    members = mailchimp.state(list=audience)["accounts"][0]["audiences"][audience]["members"]
    assert set(members) == confirmed(to_mailchimp) and len(members) == run.sent

    ortto_audience = "a00000000000000000000001"
    to_ortto = make_export(
        _connection("ortto", {"api_key": "demo-ortto-key", "region": "global"}, alice),
        ortto_audience,
        everyone,
        alice,
    )
    run = finished(services.run_request(export=to_ortto, user=alice), timeout=600)
    assert (run.status, run.failed) == (Status.SUCCEEDED, 0)
    state = ortto.state(list=ortto_audience)["accounts"][0]["audiences"][ortto_audience]
    assert set(state["members"]) == confirmed(to_ortto) and state["count"] == run.sent
    assert confirmed(to_ortto) == confirmed(to_mailchimp)
