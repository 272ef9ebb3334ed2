"""Ortto's consent read-back against the contract's calls (ortto_api.md §10)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests

from connections.types.base import (
    AuthRevoked,
    ConsentEvent,
    ConsentState,
    MemoryCredentialStore,
    Permanent,
    RateLimited,
    Transient,
)
from connections.types.ortto.backend import OrttoBackend

EU = "https://api.eu.ortto.test/v1"
PEOPLE = f"{EU}/person/get"
SUPPRESSED = f"{EU}/suppression-list/email/get"


@pytest.fixture(autouse=True)
def ortto_urls(settings):
    settings.ORTTO_API_URLS = {
        "global": "https://api.ortto.test/v1",
        "au": "https://api.au.ortto.test/v1",
        "eu": EU,
    }


@pytest.fixture
def store():
    return MemoryCredentialStore({"api_key": "k3y", "region": "eu"})


def backend_of(store):
    """A backend as a new worker makes it (nothing kept from an earlier read)."""
    return OrttoBackend(store)


def person(n: int, permission: object = False) -> dict:
    return {"id": f"{n:024x}", "fields": {"str::email": f"p{n}@example.com", "bol::p": permission}}


def serve(mocked, people: list[dict], suppressed: list) -> None:
    """Answer both reads from these lists, paged by ``limit`` and ``offset`` as Ortto does."""

    def page(request, items: list, key: str):
        body = json.loads(request.body)
        offset, limit = body["offset"], body["limit"]
        found = items[offset : offset + limit]
        reply = {
            key: found,
            "offset": offset,
            "next_offset": offset + len(found),
            "has_more": offset + len(found) < len(items),
        }
        return (200, {}, json.dumps(reply))

    mocked.add_callback("POST", PEOPLE, callback=lambda r: page(r, people, "contacts"))
    mocked.add_callback("POST", SUPPRESSED, callback=lambda r: page(r, suppressed, "emails"))


def read_all(backend, cursor=None) -> list:
    pages = []
    while True:
        page = backend.read_consent([], since=None, cursor=cursor)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            return pages


def bodies(mocked) -> list[tuple[str, dict]]:
    return [(call.request.url, json.loads(call.request.body)) for call in mocked.calls]


def test_it_reads_people_without_permission_then_the_suppression_list(mocked, store):
    serve(mocked, [person(n) for n in range(1200)], [{"email": "b@example.com"}])
    pages = read_all(backend_of(store))
    assert bodies(mocked) == [
        (
            PEOPLE,
            {
                "limit": 500,
                "offset": offset,
                "fields": ["str::email", "bol::p"],
                "filter": {"$bol::is": {"field_id": "bol::p", "value": False}},
            },
        )
        for offset in (0, 500, 1000)
    ] + [(SUPPRESSED, {"limit": 500, "offset": 0, "sort": "email", "sort_order": "desc"})]
    assert [len(page.events) for page in pages] == [500, 500, 200, 1]
    assert pages[0].events[0] == ConsentEvent("p0@example.com", ConsentState.PERMISSION_OFF)
    assert pages[-1].events == [ConsentEvent("b@example.com", ConsentState.SUPPRESSED)]
    assert json.loads(pages[2].cursor) == {"stream": "suppression-list", "offset": 0}


def test_since_and_lists_change_nothing(mocked, store):
    serve(mocked, [person(1)], [])
    backend = backend_of(store)
    page = backend.read_consent(["aud1"], since=datetime(2026, 5, 2, tzinfo=UTC))
    assert page.events == [ConsentEvent("p1@example.com", ConsentState.PERMISSION_OFF)]
    assert "since" not in mocked.calls[0].request.body.decode()


def test_a_read_resumed_from_a_middle_page_gives_the_rest_once(mocked, store):
    serve(mocked, [person(n) for n in range(1200)], ["x@example.com"])
    first = backend_of(store).read_consent([], since=None)
    rest = read_all(backend_of(store), cursor=first.cursor)
    assert json.loads(mocked.calls[1].request.body)["offset"] == 500
    emails = [event.email for page in [first, *rest] for event in page.events]
    assert len(emails) == len(set(emails)) == 1201


def test_suppression_entries_keep_their_reason_and_date_when_they_carry_them(mocked, store):
    entries = [
        {"email": "b@example.com", "reason": "hard bounce", "date": "2026-05-02T10:00:00Z"},
        "plain@example.com",
        {"reason": "no address"},
    ]
    serve(mocked, [], entries)
    pages = read_all(backend_of(store))
    assert pages[-1].events == [
        ConsentEvent(
            "b@example.com",
            ConsentState.SUPPRESSED,
            datetime(2026, 5, 2, 10, 0, tzinfo=UTC),
            "",
            "hard bounce",
        ),
        ConsentEvent("plain@example.com", ConsentState.SUPPRESSED),
    ]


def test_a_bare_array_without_has_more_is_paged_while_pages_are_full(mocked, store):
    mocked.post(PEOPLE, json={"contacts": [], "has_more": False})
    mocked.post(SUPPRESSED, json=[{"email": f"s{n}@example.com"} for n in range(500)])
    mocked.post(SUPPRESSED, json=[{"email": "last@example.com"}])
    pages = read_all(backend_of(store))
    assert [len(page.events) for page in pages] == [0, 500, 1]
    assert json.loads(mocked.calls[2].request.body)["offset"] == 500


def test_a_reply_that_does_not_move_on_ends_the_stream(mocked, store):
    mocked.post(PEOPLE, json={"contacts": [], "next_offset": 0, "has_more": True})
    page = backend_of(store).read_consent([], since=None)
    assert json.loads(page.cursor) == {"stream": "suppression-list", "offset": 0}


def test_people_whose_permission_is_on_are_left_out(mocked, store):
    serve(mocked, [person(1, True), person(2, None), {"id": "x", "fields": {}}], [])
    page = backend_of(store).read_consent([], since=None)
    assert [event.email for event in page.events] == ["p2@example.com"]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"error": {"code": "unauthorized", "message": "bad key"}}, AuthRevoked),
        (429, {"error": {"code": "rate-limit", "try-in-seconds": 7}}, RateLimited),
        (502, {"error": {"code": "internal", "message": "oops"}}, Transient),
        (400, {"error": {"code": "bad-request", "message": "no"}}, Permanent),
    ],
)
def test_errors_are_typed_as_for_a_push(mocked, store, status, body, error):
    mocked.post(PEOPLE, status=status, json=body)
    with pytest.raises(error) as caught:
        backend_of(store).read_consent([], since=None)
    if error is RateLimited:
        assert caught.value.wait == 7
    assert bool(store.auth_failures) == (error is AuthRevoked)


def test_a_timeout_on_the_suppression_list_is_transient_and_keeps_its_cursor(mocked, store):
    mocked.post(SUPPRESSED, body=requests.Timeout("slow"))
    cursor = '{"stream":"suppression-list","offset":500}'
    with pytest.raises(Transient):
        backend_of(store).read_consent([], since=None, cursor=cursor)
    assert json.loads(mocked.calls[0].request.body)["offset"] == 500


def test_it_refuses_cursors_not_its_own(store):
    for cursor in ("", "{}", '{"stream":"people","offset":0}', '{"stream":"permission-off"}'):
        with pytest.raises(ValueError):
            backend_of(store).read_consent([], since=None, cursor=cursor)


def test_it_never_asks_for_more_than_500(mocked, store):
    serve(mocked, [person(n) for n in range(501)], [])
    read_all(backend_of(store))
    assert {json.loads(call.request.body)["limit"] for call in mocked.calls} == {500}


def test_it_says_it_reads_consent():
    assert OrttoBackend.reads_consent is True
