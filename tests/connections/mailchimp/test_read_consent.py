"""Mailchimp's consent read-back against the contract's calls (mailchimp_api.md §12)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

from connections.types.base import (
    AuthRevoked,
    ConsentColumns,
    ConsentEvent,
    ConsentState,
    MemoryCredentialStore,
    Permanent,
    RateLimited,
    Transient,
)
from connections.types.mailchimp.backend import MailchimpBackend
from connections.types.mailchimp.client import CONSENT_MEMBER_FIELDS

API = "https://us21.mc.test/3.0"
KEY = "0123abcd0123abcd-us21"
MEMBERS = re.compile(rf"{re.escape(API)}/lists/(\w+)/members")
REPORTS = re.compile(rf"{re.escape(API)}/lists/(\w+)/abuse-reports")


@pytest.fixture(autouse=True)
def mailchimp_urls(settings):
    settings.MAILCHIMP_API_URL = "https://{dc}.mc.test/3.0"
    settings.REDIS_URL = ""  # connection slots in the process


@pytest.fixture
def store():
    return MemoryCredentialStore({"api_key": KEY})


def backend_of(store):
    """A backend as a new worker makes it (nothing kept from an earlier read)."""
    return MailchimpBackend(store)


def query(request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(request.url).query).items()}


def member(n: int, status: str = "unsubscribed", **extra) -> dict:
    return {
        "email_address": f"p{n}@example.com",
        "status": status,
        "last_changed": "2026-05-02T09:14:27+00:00",
        **extra,
    }


def serve(mocked, audiences: dict[str, dict[str, list[dict]]]):
    """Answer member and abuse-report reads from ``{audience: {"unsubscribed": [...],
    "cleaned": [...], "abuse": [...]}}``, paged by ``count`` and ``offset`` as Mailchimp does."""

    def page(items: list[dict], request) -> tuple[list[dict], int]:
        params = query(request)
        offset, count = int(params.get("offset", 0)), int(params.get("count", 10))
        return items[offset : offset + count], len(items)

    def members(request):
        audience = MEMBERS.match(request.url).group(1)
        if audience not in audiences:
            return (404, {}, json.dumps({"title": "Resource Not Found", "status": 404}))
        found, total = page(audiences[audience].get(query(request)["status"], []), request)
        return (200, {}, json.dumps({"members": found, "total_items": total}))

    def reports(request):
        audience = REPORTS.match(request.url).group(1)
        if audience not in audiences:
            return (404, {}, json.dumps({"title": "Resource Not Found", "status": 404}))
        found, total = page(audiences[audience].get("abuse", []), request)
        body = {"abuse_reports": found, "list_id": audience, "total_items": total}
        return (200, {}, json.dumps(body))

    mocked.add_callback("GET", MEMBERS, callback=members)
    mocked.add_callback("GET", REPORTS, callback=reports)


def read_all(backend, lists, since=None, cursor=None) -> list:
    pages = []
    while True:
        page = backend.read_consent(lists, since=since, cursor=cursor)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            return pages


def calls(mocked) -> list[tuple[str, str, str]]:
    """(path, status, offset) of each read made."""
    return [
        (
            urlsplit(call.request.url).path.rsplit("/", 1)[1],
            query(call.request).get("status", ""),
            query(call.request)["offset"],
        )
        for call in mocked.calls
    ]


def test_it_asks_for_opted_out_members_changed_an_hour_before_since_in_utc(mocked, store):
    serve(mocked, {"a1": {"unsubscribed": [member(1, unsubscribe_reason="Too many")]}})
    since = datetime(2026, 5, 2, 12, 0, tzinfo=ZoneInfo("Europe/Oslo"))  # 10:00 UTC
    page = backend_of(store).read_consent(["a1"], since=since)
    assert query(mocked.calls[0].request) == {
        "status": "unsubscribed",
        "since_last_changed": "2026-05-02T09:00:00+00:00",
        "sort_field": "last_changed",
        "sort_dir": "ASC",
        "count": "1000",
        "offset": "0",
        "fields": CONSENT_MEMBER_FIELDS,
    }
    assert page.events == [
        ConsentEvent(
            "p1@example.com",
            ConsentState.UNSUBSCRIBED,
            datetime(2026, 5, 2, 9, 14, 27, tzinfo=UTC),
            "a1",
            "Too many",
        )
    ]
    assert json.loads(page.cursor) == {
        "list": "a1",
        "stream": "cleaned",
        "offset": 0,
        "since": "2026-05-02T09:00:00+00:00",
    }


def test_without_since_every_opted_out_member_is_read(mocked, store):
    serve(mocked, {"a1": {}})
    backend_of(store).read_consent(["a1"], since=None)
    assert "since_last_changed" not in query(mocked.calls[0].request)


def test_a_naive_since_is_read_as_utc(mocked, store):
    serve(mocked, {"a1": {}})
    backend_of(store).read_consent(["a1"], since=datetime(2026, 5, 2, 0, 30))
    assert query(mocked.calls[0].request)["since_last_changed"] == "2026-05-01T23:30:00+00:00"


def test_it_pages_each_stream_until_the_offset_reaches_the_total(mocked, store):
    serve(
        mocked,
        {
            "a1": {
                "unsubscribed": [member(n) for n in range(2500)],
                "cleaned": [member(9000, "cleaned")],
                "abuse": [{"email_address": "angry@example.com", "date": "2026-05-03T08:00:00Z"}],
            },
            "b2": {"cleaned": [member(9001, "cleaned", unsubscribe_reason="not read")]},
        },
    )
    pages = read_all(backend_of(store), ["a1", "b2"])
    assert calls(mocked) == [
        ("members", "unsubscribed", "0"),
        ("members", "unsubscribed", "1000"),
        ("members", "unsubscribed", "2000"),
        ("members", "cleaned", "0"),
        ("abuse-reports", "", "0"),
        ("members", "unsubscribed", "0"),
        ("members", "cleaned", "0"),
        ("abuse-reports", "", "0"),
    ]
    assert [len(page.events) for page in pages] == [1000, 1000, 500, 1, 1, 0, 1, 0]
    events = [event for page in pages for event in page.events]
    assert len({event.email for event in events}) == 2503
    assert events[2500] == ConsentEvent(
        "p9000@example.com",
        ConsentState.CLEANED,
        datetime(2026, 5, 2, 9, 14, 27, tzinfo=UTC),
        "a1",
    )
    assert events[2501] == ConsentEvent(
        "angry@example.com",
        ConsentState.COMPLAINED,
        datetime(2026, 5, 3, 8, 0, tzinfo=UTC),
        "a1",
    )
    assert (events[-1].list_id, events[-1].reason) == ("b2", "")
    assert all(len(page.cursor) <= 1000 for page in pages[:-1])


def test_a_read_resumed_from_a_middle_page_asks_the_same_question_from_there(mocked, store):
    serve(mocked, {"a1": {"unsubscribed": [member(n) for n in range(2500)]}})
    since = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)
    first = backend_of(store).read_consent(["a1"], since=since)
    # After a restart the caller passes its stored cursor (and may pass another since).
    rest = read_all(backend_of(store), ["a1"], since=None, cursor=first.cursor)
    resumed = query(mocked.calls[1].request)
    assert (resumed["offset"], resumed["since_last_changed"]) == (
        "1000",
        "2026-05-02T09:00:00+00:00",
    )
    emails = [event.email for page in [first, *rest] for event in page.events]
    assert sorted(emails) == sorted(f"p{n}@example.com" for n in range(2500))


def test_an_export_to_a_tag_reads_its_audience_once(mocked, store):
    serve(mocked, {"a1": {}})
    read_all(backend_of(store), ["a1#VIP", "a1", " a1#Spring "])
    assert [call.request.url.split("/lists/")[1][:2] for call in mocked.calls] == ["a1"] * 3


def test_an_audience_gone_at_mailchimp_is_skipped_and_the_next_one_read(mocked, store):
    serve(mocked, {"b2": {"unsubscribed": [member(1)]}})
    page = backend_of(store).read_consent(["gone", "b2"], since=None)
    assert [event.list_id for event in page.events] == ["b2"]
    assert json.loads(page.cursor)["list"] == "b2"


def test_members_without_an_address_or_not_opted_out_are_left_out(mocked, store):
    serve(
        mocked,
        {
            "a1": {
                "unsubscribed": [
                    member(1, "subscribed"),
                    {"status": "unsubscribed"},
                    {"email_address": "  ", "status": "unsubscribed"},
                    member(2),
                ]
            }
        },
    )
    page = backend_of(store).read_consent(["a1"], since=None)
    assert [event.email for event in page.events] == ["p2@example.com"]


def test_a_member_whose_status_is_not_text_is_left_out_and_the_others_read(mocked, store):
    odd = {"email_address": "odd@example.com", "status": ["unsubscribed"]}
    serve(mocked, {"a1": {"unsubscribed": [member(1), odd, member(2)]}})
    page = backend_of(store).read_consent(["a1"], since=None)
    assert [event.email for event in page.events] == ["p1@example.com", "p2@example.com"]


def test_a_page_of_one_status_is_read_column_by_column_as_the_same_events(mocked, store):
    serve(mocked, {"a1": {"unsubscribed": [member(1), member(2, unsubscribe_reason="Spam")]}})
    page = backend_of(store).read_consent(["a1"], since=None)
    assert isinstance(page.events, ConsentColumns)
    assert [(event.email, event.state, event.list_id) for event in page.events] == [
        ("p1@example.com", ConsentState.UNSUBSCRIBED, "a1"),
        ("p2@example.com", ConsentState.UNSUBSCRIBED, "a1"),
    ]
    assert page.events[1].reason == "Spam"


def test_a_long_reason_is_cut_and_a_bad_date_left_out(mocked, store):
    serve(
        mocked,
        {"a1": {"unsubscribed": [member(1, unsubscribe_reason="x" * 300, last_changed="soon")]}},
    )
    [event] = backend_of(store).read_consent(["a1"], since=None).events
    assert (len(event.reason), event.occurred_at) == (200, None)


@pytest.mark.parametrize(
    ("status", "title", "error"),
    [
        (401, "API Key Invalid", AuthRevoked),
        (429, "Too Many Requests", RateLimited),
        (503, "Service Unavailable", Transient),
        (400, "Invalid Resource", Permanent),
    ],
)
def test_errors_are_typed_as_for_a_push(mocked, store, status, title, error):
    body = {"type": "x", "title": title, "status": status, "detail": "no", "instance": "i"}
    mocked.get(MEMBERS, status=status, json=body, content_type="application/problem+json")
    with pytest.raises(error):
        backend_of(store).read_consent(["a1"], since=None)
    assert bool(store.auth_failures) == (error is AuthRevoked)


def test_a_dropped_connection_is_transient(mocked, store):
    mocked.get(MEMBERS, body=requests.ConnectionError("reset"))
    with pytest.raises(Transient):
        backend_of(store).read_consent(["a1"], since=None)


def test_it_refuses_more_lists_than_it_reads_and_cursors_not_its_own(store):
    backend = backend_of(store)
    lists = [f"a{n}" for n in range(backend.max_consent_lists + 1)]
    with pytest.raises(ValueError):
        backend.read_consent(lists, since=None)
    for cursor in ("", "[]", '{"list":"a1","stream":"bounced","offset":0,"since":null}'):
        with pytest.raises(ValueError):
            backend.read_consent(["a1"], since=None, cursor=cursor)


def test_a_cursor_for_an_audience_no_longer_read_starts_again(mocked, store):
    serve(mocked, {"a1": {}})
    cursor = '{"list":"old","stream":"abuse-reports","offset":7,"since":null}'
    backend_of(store).read_consent(["a1"], since=None, cursor=cursor)
    assert calls(mocked) == [("members", "unsubscribed", "0")]


def test_a_cursor_stays_under_1000_characters_for_the_longest_list_id(mocked, store):
    audience = "ø" * 200  # Export.list_id holds at most 200 characters
    mocked.get(re.compile(r".*/members"), json={"members": [member(1)], "total_items": 5})
    page = backend_of(store).read_consent([f"{audience}#tag"], since=datetime.now(UTC))
    assert len(page.cursor) <= 1000
    assert json.loads(page.cursor)["list"] == audience


def test_it_says_it_reads_consent():
    assert MailchimpBackend.reads_consent is True
