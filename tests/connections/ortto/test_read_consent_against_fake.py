"""Ortto's consent read-back against the running fake (fakes/ortto.py): nothing mocked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connections.types.base import ConsentEvent, ConsentState, MemoryCredentialStore, Record
from connections.types.ortto.backend import OrttoBackend
from fakes.testing import running_fake

PREFIXES = {"global": "", "au": "/au", "eu": "/eu"}


@pytest.fixture
def fake(settings):
    with running_fake("ortto", rate_limit=0) as fake:
        settings.ORTTO_API_URLS = {
            region: f"{fake.root_url}{prefix}/v1" for region, prefix in PREFIXES.items()
        }
        yield fake


def backend() -> OrttoBackend:
    """A backend as a new worker makes it (nothing kept from an earlier read)."""
    return OrttoBackend(MemoryCredentialStore({"api_key": "demo-ortto-key", "region": "global"}))


def read_all(cursor=None) -> list:
    pages = []
    while True:
        page = backend().read_consent([], since=datetime.now(UTC), cursor=cursor)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            return pages


def test_1200_people_without_permission_come_in_three_pages_then_the_suppressed(fake):
    fake.consent([f"u{n:04}@example.com" for n in range(1200)], "unsubscribed")
    fake.consent(["bounced@example.com"], "bounced")
    fake.consent(["angry@example.com"], "complained")

    pages = read_all()
    assert [len(page.events) for page in pages] == [500, 500, 200, 2]
    assert pages[0].events[0] == ConsentEvent("u0000@example.com", ConsentState.PERMISSION_OFF)
    assert sorted(pages[-1].events, key=lambda event: event.email) == [
        ConsentEvent("angry@example.com", ConsentState.SUPPRESSED),
        ConsentEvent("bounced@example.com", ConsentState.SUPPRESSED),
    ]
    requests = fake.state(summary=True)["stats"]["requests_by_endpoint"]
    assert requests["POST /v1/person/get"] == 3


def test_since_does_not_hide_anyone_ortto_keeps_no_date(fake):
    fake.consent(["long-ago@example.com"], "unsubscribed", at="2020-01-01T00:00:00Z")
    events = [event.email for page in read_all() for event in page.events]
    assert events == ["long-ago@example.com"]


def test_a_read_resumed_from_a_stored_cursor_gives_the_rest_exactly_once(fake):
    emails = {f"u{n:04}@example.com" for n in range(1200)}
    fake.consent(sorted(emails), "unsubscribed")
    fake.consent(["s@example.com"], "bounced")
    first = backend().read_consent([], since=None)
    rest = read_all(cursor=first.cursor)  # another worker, from the stored cursor
    read = [event.email for page in [first, *rest] for event in page.events]
    assert len(read) == len(set(read)) == 1201
    assert set(read) == emails | {"s@example.com"}


def test_people_who_keep_their_permission_are_not_read(fake):
    ortto = backend()
    ortto.prepare("a00000000000000000000001", [])
    ortto.push("a00000000000000000000001", [Record("kept@example.com", consent=True)])
    assert all(not page.events for page in read_all())


def test_someone_read_back_is_still_never_sent_again(fake):
    audience = "a00000000000000000000001"
    ortto = backend()
    ortto.prepare(audience, [])
    ortto.push(audience, [Record("gone@example.com", consent=True)])
    fake.consent(["gone@example.com"], "unsubscribed")
    fake.consent(["bounced@example.com"], "bounced")
    result = ortto.push(
        audience,
        [Record("gone@example.com", consent=True), Record("bounced@example.com", consent=True)],
    )
    assert [(failure.email, failure.code) for failure in result.failures] == [
        ("bounced@example.com", "suppressed")
    ]
    people = fake.state()["accounts"][0]["people"]
    assert people["gone@example.com"]["fields"]["bol::p"] is False
    assert "bounced@example.com" not in people
