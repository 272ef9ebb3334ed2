"""Campaign Monitor's consent read-back (campaign_monitor_api.md §11) against its bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from responses import matchers

from connections.types.base import (
    AuthRevoked,
    ConsentPage,
    ConsentState,
    ListNotFound,
    MemoryCredentialStore,
    RateLimited,
    Transient,
)
from connections.types.campaign_monitor.backend import (
    CampaignMonitorBackend,
    ConsentCursor,
    client_time_zone,
    suppression_state,
)
from tests.connections.campaign_monitor.test_client import LIST_ID, REVOKED
from tests.connections.conftest import CM_API
from tests.connections.factories import campaign_monitor_credentials

CLIENT_ID = "4a397ccaaa55eb4e6aa1221e1e2d7122"
SYDNEY = timezone(timedelta(hours=10))
#: 03:00 UTC on 2 May is 13:00 in Sydney: the read starts on 1 May there.
SINCE = datetime(2026, 5, 2, 3, 0, tzinfo=UTC)
LIST_QUERY = {"pagesize": "1000", "orderfield": "date", "orderdirection": "asc"}


@pytest.fixture
def store():
    return MemoryCredentialStore(campaign_monitor_credentials())


@pytest.fixture
def backend(store):
    return CampaignMonitorBackend(store)


@pytest.fixture
def account(mocked):
    """One client in Sydney's time zone with the list."""
    mocked.get(f"{CM_API}/clients.json", json=[{"ClientID": CLIENT_ID, "Name": "Client One"}])
    mocked.get(
        f"{CM_API}/clients/{CLIENT_ID}/lists.json", json=[{"ListID": LIST_ID, "Name": "List One"}]
    )
    mocked.get(
        f"{CM_API}/clients/{CLIENT_ID}.json",
        json={"BasicDetails": {"ClientID": CLIENT_ID, "TimeZone": "(GMT+10:00) Canberra, Sydney"}},
    )


def envelope(results, page=1, pages=1, total=None):
    return {
        "Results": results,
        "ResultsOrderedBy": "date",
        "OrderDirection": "asc",
        "PageNumber": page,
        "PageSize": 1000,
        "RecordsOnThisPage": len(results),
        "TotalNumberOfRecords": len(results) if total is None else total,
        "NumberOfPages": pages,
    }


def person(email, date, state="Unsubscribed"):
    return {"EmailAddress": email, "Name": "", "Date": date, "State": state, "CustomFields": []}


def list_read(mocked, kind, results, *, page=1, pages=1, date="2026-05-01"):
    mocked.get(
        f"{CM_API}/lists/{LIST_ID}/{kind}.json",
        json=envelope(results, page, pages),
        match=[matchers.query_param_matcher({**LIST_QUERY, "date": date, "page": str(page)})],
    )


def suppressed(mocked, results, page=1, pages=1):
    mocked.get(
        f"{CM_API}/clients/{CLIENT_ID}/suppressionlist.json",
        json=envelope(results, page, pages),
        match=[
            matchers.query_param_matcher(
                {
                    "page": str(page),
                    "pagesize": "1000",
                    "orderfield": "date",
                    "orderdirection": "desc",
                }
            )
        ],
    )


def campaigns(mocked, results, *, page=1, pages=1, sent_from="2026-04-01"):
    """A page of the client's sent campaigns (ids only matter here), oldest first."""
    mocked.get(
        f"{CM_API}/clients/{CLIENT_ID}/campaigns.json",
        json={**envelope(results, page, pages), "ResultsOrderedBy": "SentDate"},
        match=[
            matchers.query_param_matcher(
                {
                    "sentfromdate": sent_from,
                    "page": str(page),
                    "pagesize": "1000",
                    "orderdirection": "asc",
                }
            )
        ],
    )


def campaign(campaign_id, name="Spring sale", sent="2026-04-20 09:00:00"):
    return {"CampaignID": campaign_id, "Name": name, "Subject": name, "SentDate": sent}


def spam(mocked, campaign_id, results, *, page=1, pages=1, date="2026-05-01"):
    mocked.get(
        f"{CM_API}/campaigns/{campaign_id}/spam.json",
        json=envelope(results, page, pages),
        match=[matchers.query_param_matcher({**LIST_QUERY, "date": date, "page": str(page)})],
    )


def complaint(email, date, list_id=LIST_ID):
    return {"EmailAddress": email, "ListID": list_id, "Date": date}


def read_all(backend, since=SINCE, cursor=None):
    pages = []
    while True:
        page = backend.read_consent([LIST_ID], since=since, cursor=cursor)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            return pages


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("(GMT+10:00) Canberra, Melbourne, Sydney", timedelta(hours=10)),
        ("(GMT-05:00) Eastern Time (US & Canada)", timedelta(hours=-5)),
        ("(GMT+05:30) Chennai, Kolkata, Mumbai, New Delhi", timedelta(hours=5, minutes=30)),
        ("(GMT) Dublin, Edinburgh, Lisbon, London", timedelta(0)),
        ("(UTC+01:00) Amsterdam", timedelta(hours=1)),
        ("Somewhere", timedelta(0)),
    ],
)
def test_a_clients_time_zone_is_read_from_its_name(text, offset):
    assert client_time_zone(text).utcoffset(None) == offset


@pytest.mark.parametrize(
    ("reason", "state"),
    [
        ("Unsubscribed", ConsentState.UNSUBSCRIBED),
        ("Spam Complaint", ConsentState.COMPLAINED),
        ("Bounced", ConsentState.BOUNCED),
        ("Manually Added", ConsentState.SUPPRESSED),
    ],
)
def test_a_suppression_reason_says_what_the_person_did(reason, state):
    assert suppression_state(reason) == state


def test_it_reads_each_list_page_by_page_then_the_suppression_list(mocked, backend, account):
    list_read(mocked, "unsubscribed", [person("a@x.com", "2026-05-01 09:15:00")], pages=2)
    list_read(mocked, "unsubscribed", [person("b@x.com", "2026-05-02 10:00:00")], page=2, pages=2)
    list_read(mocked, "bounced", [person("c@x.com", "2026-05-03 00:00:00", "Bounced")])
    suppressed(
        mocked,
        [
            {
                "SuppressionReason": "Spam Complaint",
                "EmailAddress": "d@x.com",
                "Date": "2026-05-03 08:00:31",
                "State": "Suppressed",
            },
            {
                "SuppressionReason": "Unsubscribed",
                "EmailAddress": "e@x.com",
                "Date": "2026-05-01 13:00:00",
                "State": "Suppressed",
            },
            # A day before since, in Sydney: older than the read needs, and the end of it.
            {
                "SuppressionReason": "Unsubscribed",
                "EmailAddress": "old@x.com",
                "Date": "2026-05-01 12:59:00",
                "State": "Suppressed",
            },
        ],
        pages=2,
    )
    campaigns(mocked, [campaign("c1")])
    spam(mocked, "c1", [complaint("f@x.com", "2026-05-02 11:00:00")])
    pages = read_all(backend)
    events = [event for page in pages for event in page.events]
    assert [(e.email, e.state, e.list_id, e.reason) for e in events] == [
        ("a@x.com", ConsentState.UNSUBSCRIBED, LIST_ID, ""),
        ("b@x.com", ConsentState.UNSUBSCRIBED, LIST_ID, ""),
        ("c@x.com", ConsentState.BOUNCED, LIST_ID, ""),
        ("d@x.com", ConsentState.COMPLAINED, "", "Spam Complaint"),
        ("e@x.com", ConsentState.UNSUBSCRIBED, "", "Unsubscribed"),
        ("f@x.com", ConsentState.COMPLAINED, LIST_ID, "Spring sale"),
    ]
    assert events[0].occurred_at == datetime(2026, 5, 1, 9, 15, tzinfo=SYDNEY)
    assert events[3].occurred_at == datetime(2026, 5, 3, 8, 0, 31, tzinfo=SYDNEY)
    assert events[5].occurred_at == datetime(2026, 5, 2, 11, 0, tzinfo=SYDNEY)
    assert len(pages) == 5  # one request per page; the second suppression page is not read
    assert all(len(page.cursor or "") <= 1000 for page in pages)
    assert not any("deleted.json" in call.request.url for call in mocked.calls)


def test_a_read_resumes_from_a_stored_cursor_after_a_restart(mocked, store, account):
    list_read(mocked, "unsubscribed", [person("a@x.com", "2026-05-01 09:15:00")], pages=2)
    first = CampaignMonitorBackend(store).read_consent([LIST_ID], since=SINCE)
    assert json.loads(first.cursor)["p"] == 2
    mocked.calls.reset()
    list_read(mocked, "unsubscribed", [person("b@x.com", "2026-05-02 10:00:00")], page=2, pages=2)
    # A new process, even given another since: the read goes on with its own.
    later = SINCE + timedelta(days=30)
    page = CampaignMonitorBackend(store).read_consent([LIST_ID], since=later, cursor=first.cursor)
    assert [event.email for event in page.events] == ["b@x.com"]
    reads = [call.request.url for call in mocked.calls if "/lists/" in call.request.url]
    assert len(reads) == 1 and "page=2" in reads[0] and "date=2026-05-01" in reads[0]
    assert json.loads(page.cursor)["k"] == "bounced"


def test_without_since_it_reads_everything(mocked, backend, account):
    list_read(mocked, "unsubscribed", [], date="")
    list_read(mocked, "bounced", [], date="")
    old = {
        "SuppressionReason": "Manually Added",
        "EmailAddress": "old@x.com",
        "Date": "2010-10-26 10:55:31",
        "State": "Suppressed",
    }
    suppressed(mocked, [old])
    campaigns(mocked, [campaign("c1", sent="2010-01-01 00:00:00")], sent_from="")
    spam(mocked, "c1", [complaint("spam@x.com", "2010-01-02 00:00:00")], date="")
    events = [event for page in read_all(backend, since=None) for event in page.events]
    assert [(e.email, e.state) for e in events] == [
        ("old@x.com", ConsentState.SUPPRESSED),
        ("spam@x.com", ConsentState.COMPLAINED),
    ]


def test_complaints_are_read_campaign_by_campaign_page_by_page(mocked, backend, account):
    """The campaigns sent from 30 days before the read's first day (complaints come after the
    sending), each campaign's complaints from that day; a page of campaigns read once."""
    for kind in ("unsubscribed", "bounced"):
        list_read(mocked, kind, [])
    suppressed(mocked, [])
    campaigns(mocked, [campaign("c1", "First"), campaign("c2", "Second")], pages=2)
    campaigns(mocked, [campaign("c3", "Third")], page=2, pages=2)
    spam(mocked, "c1", [complaint("a@x.com", "2026-05-01 10:00:00")], pages=2)
    spam(mocked, "c1", [complaint("b@x.com", "2026-05-02 10:00:00", "other")], page=2, pages=2)
    spam(mocked, "c2", [])
    spam(mocked, "c3", [complaint("c@x.com", "2026-05-03 10:00:00")])

    pages = read_all(backend)

    events = [event for page in pages for event in page.events]
    assert [(e.email, e.state, e.list_id, e.reason) for e in events] == [
        ("a@x.com", ConsentState.COMPLAINED, LIST_ID, "First"),
        ("b@x.com", ConsentState.COMPLAINED, "other", "First"),
        ("c@x.com", ConsentState.COMPLAINED, LIST_ID, "Third"),
    ]
    assert len(pages) == 3 + 4  # the lists and the suppression list, then a page per call
    listed = [call for call in mocked.calls if "/campaigns.json" in call.request.url]
    assert len(listed) == 2  # each page of campaigns once
    assert all(len(page.cursor or "") <= 1000 for page in pages)


def test_a_read_of_complaints_resumes_in_the_middle_of_a_campaign(mocked, store, account):
    campaigns(mocked, [campaign("c1"), campaign("c2")])
    spam(mocked, "c1", [complaint("a@x.com", "2026-05-01 10:00:00")], pages=2)
    spam(mocked, "c1", [complaint("b@x.com", "2026-05-01 11:00:00")], page=2, pages=2)
    spam(mocked, "c2", [complaint("c@x.com", "2026-05-01 12:00:00")])
    # Where the complaints begin: after the two list reads and the suppression list.
    cursor = ConsentCursor(3, "complaints", CLIENT_ID, 1, SINCE).encode()
    page = CampaignMonitorBackend(store).read_consent([LIST_ID], since=None, cursor=cursor)
    assert [e.email for e in page.events] == ["a@x.com"]
    assert json.loads(page.cursor)["sp"] == 2

    # A new process goes on from the stored cursor: the rest of c1, then c2, then the end.
    emails = []
    cursor = page.cursor
    while cursor is not None:
        page = CampaignMonitorBackend(store).read_consent([LIST_ID], since=None, cursor=cursor)
        emails += [e.email for e in page.events]
        cursor = page.cursor
    assert emails == ["b@x.com", "c@x.com"]


def test_a_campaign_deleted_before_the_one_being_read_does_not_skip_it(mocked, store, account):
    # The cursor was made when c1 came first; c1 is gone and c2 (being read) is first now.
    campaigns(mocked, [campaign("c2"), campaign("c3")])
    spam(mocked, "c2", [complaint("b@x.com", "2026-05-01 11:00:00")], page=2, pages=2)
    spam(mocked, "c3", [])
    cursor = ConsentCursor(3, "complaints", CLIENT_ID, 1, SINCE, at=1, campaign="c2", spam_page=2)
    page = CampaignMonitorBackend(store).read_consent(
        [LIST_ID], since=SINCE, cursor=cursor.encode()
    )
    assert [e.email for e in page.events] == ["b@x.com"]
    assert (json.loads(page.cursor)["c"], json.loads(page.cursor)["sp"]) == ("c3", 1)


def test_a_campaign_deleted_after_it_was_listed_has_no_complaints(mocked, store, account):
    campaigns(mocked, [campaign("gone"), campaign("c2")])
    mocked.get(
        f"{CM_API}/campaigns/gone/spam.json",
        json={"Code": 301, "Message": "Invalid CampaignID"},
        status=400,
    )
    spam(mocked, "c2", [complaint("b@x.com", "2026-05-01 11:00:00")])
    cursor = ConsentCursor(3, "complaints", CLIENT_ID, 1, SINCE).encode()
    page = CampaignMonitorBackend(store).read_consent([LIST_ID], since=SINCE, cursor=cursor)
    assert page.events == [] and json.loads(page.cursor)["c"] == "c2"
    page = CampaignMonitorBackend(store).read_consent([LIST_ID], since=SINCE, cursor=page.cursor)
    assert [e.email for e in page.events] == ["b@x.com"] and page.cursor is None


def test_without_campaigns_no_complaint_is_read(mocked, backend, account):
    for kind in ("unsubscribed", "bounced"):
        list_read(mocked, kind, [])
    suppressed(mocked, [])
    campaigns(mocked, [])
    assert [event for page in read_all(backend) for event in page.events] == []
    assert not any("spam.json" in call.request.url for call in mocked.calls)


def test_a_token_without_the_reports_scope_skips_complaints_not_the_connection(
    mocked, store, backend, account
):
    """Connections authorised before ViewReports was asked for read lists but not campaigns."""
    list_read(mocked, "unsubscribed", [person("a@x.com", "2026-05-02 10:00:00")])
    list_read(mocked, "bounced", [])
    suppressed(mocked, [])
    mocked.get(
        f"{CM_API}/clients/{CLIENT_ID}/campaigns.json",
        json={"Code": 50, "Message": "Must be authenticated with the ViewReports scope"},
        status=401,
    )
    pages = read_all(backend)
    assert [(e.email, e.state) for page in pages for e in page.events] == [
        ("a@x.com", ConsentState.UNSUBSCRIBED)
    ]
    assert pages[-1].cursor is None
    assert store.auth_failures == []  # the connection is not marked for sign-in again


def test_a_cursor_stored_before_complaints_were_read_still_resumes(mocked, store, account):
    suppressed(mocked, [])
    campaigns(mocked, [])
    old = json.dumps(
        {"i": 2, "k": "suppressionlist", "id": CLIENT_ID, "p": 1, "s": SINCE.isoformat()},
        separators=(",", ":"),
    )
    page = CampaignMonitorBackend(store).read_consent([LIST_ID], since=None, cursor=old)
    assert json.loads(page.cursor)["k"] == "complaints"
    page = CampaignMonitorBackend(store).read_consent([LIST_ID], since=None, cursor=page.cursor)
    assert page == ConsentPage(events=[], cursor=None)


def test_a_list_the_account_does_not_have_is_list_not_found(mocked, backend, account):
    with pytest.raises(ListNotFound) as caught:
        backend.read_consent(["0000"], since=SINCE)
    assert caught.value.list_id == "0000"


def test_a_list_deleted_meanwhile_is_list_not_found(mocked, backend, account):
    mocked.get(
        f"{CM_API}/lists/{LIST_ID}/unsubscribed.json",
        json={"Code": 101, "Message": "Invalid ListID"},
        status=400,
    )
    with pytest.raises(ListNotFound):
        backend.read_consent([LIST_ID], since=SINCE)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (429, {"Code": 429, "Message": "Rate limit exceeded"}, RateLimited),
        (500, {"Code": 500, "Message": "Internal Server Error"}, Transient),
        (401, REVOKED, AuthRevoked),
    ],
)
def test_errors_are_typed_as_for_a_push(mocked, store, backend, account, status, body, error):
    mocked.get(f"{CM_API}/lists/{LIST_ID}/unsubscribed.json", json=body, status=status)
    with pytest.raises(error):
        backend.read_consent([LIST_ID], since=SINCE)
    assert bool(store.auth_failures) == (error is AuthRevoked)


def test_it_refuses_more_lists_than_one_read_covers_and_a_foreign_cursor(backend):
    with pytest.raises(ValueError, match="at most 50 lists"):
        backend.read_consent([f"list{n}" for n in range(51)], since=None)
    with pytest.raises(ValueError, match="cursor"):
        backend.read_consent([LIST_ID], since=None, cursor='{"b":"person_1"}')
