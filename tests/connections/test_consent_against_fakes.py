"""Campaign Monitor's and Autopilot's consent read-back against their running fakes: paging,
``since`` and its overlap, time zones, and a read resumed from a stored cursor.

The fakes serve from a thread of this process; nothing is mocked here.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from connections.types.autopilot.backend import AutopilotBackend
from connections.types.base import ConsentState, MemoryCredentialStore
from connections.types.campaign_monitor.backend import CampaignMonitorBackend
from connections.types.campaign_monitor.client import CampaignMonitorClient
from fakes.testing import running_fake

NOW = datetime.now(UTC).replace(second=0, microsecond=0)  # list reads show whole minutes
SINCE = NOW - timedelta(days=7)


def read(backend_class, store, lists, *, since, cursor=None, pages=None) -> list:
    """Pages of a read-back from ``cursor``, each by a new backend (as after a restart); all of
    them, or the first ``pages``."""
    read_pages = []
    while pages is None or len(read_pages) < pages:
        page = backend_class(store).read_consent(lists, since=since, cursor=cursor)
        read_pages.append(page)
        cursor = page.cursor
        if cursor is None:
            break
    return read_pages


def events_of(pages) -> list:
    return [event for page in pages for event in page.events]


# Campaign Monitor ------------------------------------------------------------------------------


@pytest.fixture
def cm():
    with running_fake("campaign_monitor") as fake:
        yield fake


@pytest.fixture
def cm_store(cm):
    token = cm.seed(accounts=[{"id": "demo", "tokens": [{}]}])["accounts"][0]["tokens"][0]
    return MemoryCredentialStore(
        {**token, "expires_at": time.time() + token["expires_in"]},
    )


@pytest.fixture
def cm_lists(cm):
    return {entry["Title"]: list_id for list_id, entry in cm.state(summary=True)["lists"].items()}


@pytest.fixture(autouse=True)
def cm_client_at_fake(request, settings):
    if "cm" in request.fixturenames:
        fake = request.getfixturevalue("cm")
        settings.CAMPAIGN_MONITOR_API_URL = fake.base_url


def test_campaign_monitor_pages_2500_unsubscribed_by_1000_and_resumes_exactly_once(
    cm, cm_store, cm_lists
):
    newsletter = cm_lists["Newsletter"]
    emails = [f"u{n:04d}@example.com" for n in range(2500)]
    cm.consent(emails, "unsubscribed", list_id=newsletter, at=(NOW - timedelta(days=1)).isoformat())
    lists = [newsletter, cm_lists["Customers"]]

    # Two pages, then the process dies; a new one resumes from the stored cursor.
    first = read(CampaignMonitorBackend, cm_store, lists, since=SINCE, pages=2)
    rest = read(CampaignMonitorBackend, cm_store, lists, since=SINCE, cursor=first[-1].cursor)
    events = events_of(first + rest)

    in_list = Counter(e.email for e in events if e.list_id == newsletter)
    assert set(in_list) == set(emails) and set(in_list.values()) == {1}
    assert {e.state for e in events if e.list_id == newsletter} == {ConsentState.UNSUBSCRIBED}
    # The list's setting (AllClientLists) also suppressed them all: the client's list.
    suppressed = Counter(e.email for e in events if e.list_id == "")
    assert set(suppressed) == set(emails) and set(suppressed.values()) == {1}
    calls = cm.state(summary=True)["stats"]["requests_by_endpoint"]
    assert calls["GET /lists/{listid}/unsubscribed.json"] == 3 + 1  # 3 of Newsletter, 1 other
    assert calls["GET /lists/{listid}/bounced.json"] == 2
    assert calls["GET /clients/{clientid}/suppressionlist.json"] == 3
    assert "GET /lists/{listid}/deleted.json" not in calls
    assert all(e.occurred_at == NOW - timedelta(days=1) for e in events)


def test_campaign_monitor_reads_from_a_day_before_since_in_the_clients_time_zone(
    cm, cm_store, cm_lists
):
    cm.configure(time_zone="(GMT+10:00) Canberra, Melbourne, Sydney")
    newsletter = cm_lists["Newsletter"]
    at = {
        "long.ago@example.com": SINCE - timedelta(days=3),
        "overlap@example.com": SINCE - timedelta(hours=12),
        "new@example.com": SINCE + timedelta(hours=1, seconds=30),
    }
    for email, when in at.items():
        cm.consent([email], "bounced", list_id=newsletter, at=when.isoformat())
    cm.consent(["suppressed@example.com"], "suppressed", list_id=newsletter, at=NOW.isoformat())
    events = events_of(read(CampaignMonitorBackend, cm_store, [newsletter], since=SINCE))
    found = {(e.email, e.state): e for e in events}
    assert set(found) == {
        ("overlap@example.com", ConsentState.BOUNCED),
        ("new@example.com", ConsentState.BOUNCED),
        ("suppressed@example.com", ConsentState.SUPPRESSED),
    }
    # Read in Sydney's time and returned aware: the same instants (list reads keep minutes).
    assert found["new@example.com", ConsentState.BOUNCED].occurred_at == at[
        "new@example.com"
    ].replace(second=0)
    assert found["suppressed@example.com", ConsentState.SUPPRESSED].occurred_at == NOW


def test_campaign_monitor_complaints_and_people_deleted_by_a_mirror_run(cm, cm_store, cm_lists):
    newsletter = cm_lists["Newsletter"]
    client = CampaignMonitorClient(cm_store, api_url=cm.base_url)
    client.import_subscribers(newsletter, [{"EmailAddress": "left@example.com"}])
    client.delete_subscriber(newsletter, "left@example.com")
    cm.consent(["spam@example.com"], "complained", list_id=newsletter)
    events = events_of(read(CampaignMonitorBackend, cm_store, [newsletter], since=None))
    assert {(e.email, e.state, e.list_id) for e in events} == {
        ("spam@example.com", ConsentState.UNSUBSCRIBED, newsletter),
        ("spam@example.com", ConsentState.COMPLAINED, ""),  # the suppression list
        ("spam@example.com", ConsentState.COMPLAINED, newsletter),  # the campaign's complaints
    }


def test_campaign_monitor_reads_complaints_campaign_by_campaign_in_pages_and_resumes(
    cm, cm_store, cm_lists
):
    newsletter = cm_lists["Newsletter"]
    client = next(iter(cm.state(summary=True)["clients"]))
    window = [
        {"id": "old", "sent_at": (SINCE - timedelta(days=40)).isoformat()},
        {"id": "recent", "name": "News", "sent_at": (SINCE - timedelta(days=20)).isoformat()},
    ]
    cm.seed(accounts=[{"id": "demo", "clients": [{"id": client, "campaigns": window}]}])
    emails = [f"s{n:04d}@example.com" for n in range(1500)]
    yesterday = (NOW - timedelta(days=1)).isoformat()
    cm.consent(emails, "complained", list_id=newsletter, campaign_id="spring", at=yesterday)
    for email, campaign in (("late@example.com", "recent"), ("older@example.com", "old")):
        cm.consent([email], "complained", list_id=newsletter, campaign_id=campaign, at=yesterday)

    # 2 pages of unsubscribed people, 1 of bounced, 2 of the suppression list, then the
    # complaints: "recent" (sent within the 30 days before since), then "spring" in 2 pages.
    # The process dies after spring's first page; a new one resumes from the stored cursor.
    first = read(CampaignMonitorBackend, cm_store, [newsletter], since=SINCE, pages=7)
    rest = read(
        CampaignMonitorBackend, cm_store, [newsletter], since=SINCE, cursor=first[-1].cursor
    )
    assert len(rest) == 1

    complaints = [e for e in events_of(first + rest) if e.state == ConsentState.COMPLAINED]
    by_campaign = Counter(e.email for e in complaints if e.list_id == newsletter)
    assert by_campaign == Counter([*emails, "late@example.com"])
    # The campaign's name is the reason ("spring" was made by the control, named so).
    assert {e.reason for e in complaints if e.list_id == newsletter} == {"News", "Campaign 3"}
    # "old" was sent before the window: its complainer is found on the suppression list alone.
    assert ("older@example.com", "") in {(e.email, e.list_id) for e in complaints}
    assert all(e.occurred_at == NOW - timedelta(days=1) for e in complaints if e.list_id)
    calls = cm.state(summary=True)["stats"]["requests_by_endpoint"]
    assert calls["GET /campaigns/{campaignid}/spam.json"] == 3
    assert calls["GET /clients/{clientid}/campaigns.json"] <= 4  # once per backend


# Autopilot -------------------------------------------------------------------------------------


@pytest.fixture
def autopilot_fake(settings):
    with running_fake("autopilot") as fake:  # its 5 requests a second, as the service
        settings.AUTOPILOT_API_URL = fake.base_url
        yield fake


@pytest.fixture
def ap_store():
    return MemoryCredentialStore({"api_key": "demo-autopilot-key"})


def test_autopilot_pages_250_contacts_by_100_and_resumes_exactly_once(autopilot_fake, ap_store):
    contacts = [{"Email": f"p{n:03d}@example.com"} for n in range(250)]
    autopilot_fake.seed(accounts=[{"id": "demo", "contacts": contacts}])
    out = [f"p{n:03d}@example.com" for n in range(0, 250, 10)]
    autopilot_fake.consent(out[:20], "unsubscribed")
    autopilot_fake.consent(out[20:], "bounced")
    autopilot_fake.consent(["p001@example.com"], "complained")

    first = read(AutopilotBackend, ap_store, [], since=SINCE, pages=1)
    rest = read(AutopilotBackend, ap_store, [], since=SINCE, cursor=first[-1].cursor)
    assert len(first + rest) == 3
    events = events_of(first + rest)
    assert Counter((e.email, e.state) for e in events) == Counter(
        [(email, ConsentState.UNSUBSCRIBED) for email in out[:20]]
        + [(email, ConsentState.BOUNCED) for email in out[20:]]
        + [("p001@example.com", ConsentState.COMPLAINED)]
    )
    assert all(e.list_id == "" and e.occurred_at is not None for e in events)
    stats = autopilot_fake.state(summary=True)["stats"]
    assert stats["served_429"] == 0
    assert stats["requests_by_endpoint"] == {"GET /contacts": 1, "GET /contacts/{bookmark}": 2}


def test_autopilot_keeps_contacts_changed_since_less_an_hour(autopilot_fake, ap_store):
    for email, when in {
        "before@example.com": SINCE - timedelta(hours=2),
        "overlap@example.com": SINCE - timedelta(minutes=30),
        "after@example.com": SINCE + timedelta(days=1),
    }.items():
        autopilot_fake.consent([email], "unsubscribed", at=when.isoformat())
    events = events_of(read(AutopilotBackend, ap_store, [], since=SINCE))
    assert {e.email: e.occurred_at for e in events} == {
        "overlap@example.com": SINCE - timedelta(minutes=30),
        "after@example.com": SINCE + timedelta(days=1),
    }
