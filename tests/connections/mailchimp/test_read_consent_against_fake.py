"""Mailchimp's consent read-back against the running fake (fakes/mailchimp.py): nothing mocked."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connections.types.base import ConsentState, MemoryCredentialStore, Record
from connections.types.mailchimp.backend import MailchimpBackend
from fakes.testing import running_fake

KEY = "demo0mailchimp0key-us21"
SINCE = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def fake(settings):
    with running_fake("mailchimp") as fake:
        settings.MAILCHIMP_API_URL = fake.base_url
        yield fake


@pytest.fixture
def audiences(fake) -> list[str]:
    return list(fake.state(summary=True)["accounts"][0]["audiences"])


def backend() -> MailchimpBackend:
    """A backend as a new worker makes it (nothing kept from an earlier read)."""
    return MailchimpBackend(MemoryCredentialStore({"api_key": KEY}))


def read_all(lists, since=None, cursor=None) -> list:
    pages = []
    while True:
        page = backend().read_consent(lists, since=since, cursor=cursor)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            return pages


def at(moment: datetime) -> str:
    return moment.isoformat()


def test_2500_unsubscribed_come_in_three_pages_then_the_cleaned_then_complaints(fake, audiences):
    news, customers = audiences
    fake.consent([f"u{n:04}@example.com" for n in range(2500)], "unsubscribed", list_id=news)
    fake.consent(["bounced@example.com"], "bounced", list_id=news, at="2026-05-01T08:00:00Z")
    fake.consent(["angry@example.com"], "complained", list_id=customers, at="2026-05-03T08:00:00Z")

    pages = read_all([news, customers])
    states = [Counter(event.state for event in page.events) for page in pages]
    assert states == [
        {ConsentState.UNSUBSCRIBED: 1000},
        {ConsentState.UNSUBSCRIBED: 1000},
        {ConsentState.UNSUBSCRIBED: 500},
        {ConsentState.CLEANED: 1},
        {},  # no complaint in the newsletter
        {ConsentState.UNSUBSCRIBED: 1},  # a complaint unsubscribes too
        {},
        {ConsentState.COMPLAINED: 1},
    ]
    cleaned = pages[3].events[0]
    assert (cleaned.email, cleaned.list_id, cleaned.occurred_at) == (
        "bounced@example.com",
        news,
        datetime(2026, 5, 1, 8, 0, tzinfo=UTC),
    )
    complaint = pages[-1].events[0]
    assert (complaint.email, complaint.list_id, complaint.occurred_at) == (
        "angry@example.com",
        customers,
        datetime(2026, 5, 3, 8, 0, tzinfo=UTC),
    )
    assert pages[0].events[0].reason == "N/A (Unsubscribed by admin)"


def test_a_read_resumed_from_a_stored_cursor_gives_the_rest_exactly_once(fake, audiences):
    news = audiences[0]
    emails = {f"u{n:04}@example.com" for n in range(2500)}
    fake.consent(sorted(emails), "unsubscribed", list_id=news, at="2026-05-02T12:00:00Z")
    first = backend().read_consent([news], since=SINCE)
    second = backend().read_consent([news], since=SINCE, cursor=first.cursor)
    stored = second.cursor  # the worker dies here; another resumes from what was stored
    rest = read_all([news], since=SINCE, cursor=stored)
    read = [event.email for page in [first, second, *rest] for event in page.events]
    assert len(read) == len(set(read)) == 2500
    assert set(read) == emails


def test_since_leaves_out_changes_older_than_an_hour_before_it(fake, audiences):
    news = audiences[0]
    fake.consent(
        ["old@example.com"], "unsubscribed", list_id=news, at=at(SINCE - timedelta(hours=2))
    )
    fake.consent(
        ["overlap@example.com"], "cleaned", list_id=news, at=at(SINCE - timedelta(minutes=30))
    )
    fake.consent(
        ["new@example.com"], "unsubscribed", list_id=news, at=at(SINCE + timedelta(hours=1))
    )
    fake.consent(
        ["angry@example.com"], "complained", list_id=news, at=at(SINCE - timedelta(days=9))
    )

    events = [event for page in read_all([news], since=SINCE) for event in page.events]
    assert sorted((event.email, event.state) for event in events) == [
        ("angry@example.com", ConsentState.COMPLAINED),  # abuse reports have no since: all
        ("new@example.com", ConsentState.UNSUBSCRIBED),
        ("overlap@example.com", ConsentState.CLEANED),
    ]
    everything = [event.email for page in read_all([news]) for event in page.events]
    assert "old@example.com" in everything


def test_since_in_another_time_zone_is_sent_as_utc(fake, audiences):
    news = audiences[0]
    fake.consent(["in@example.com"], "unsubscribed", list_id=news, at="2026-05-02T09:30:00Z")
    fake.consent(["out@example.com"], "unsubscribed", list_id=news, at="2026-05-02T08:30:00Z")
    oslo = SINCE.astimezone(ZoneInfo("Europe/Oslo"))  # 12:00+02:00
    events = [event.email for page in read_all([news], since=oslo) for event in page.events]
    assert events == ["in@example.com"]


def test_archived_and_subscribed_members_are_not_read(fake, audiences):
    news = audiences[0]
    mailchimp = backend()
    mailchimp.prepare(news, [])
    mailchimp.push(news, [Record("kept@example.com"), Record("left@example.com")])
    mailchimp.remove(news, ["left@example.com"])
    assert all(not page.events for page in read_all([news]))


def test_someone_read_back_is_still_never_subscribed_again(fake, audiences):
    news = audiences[0]
    mailchimp = backend()
    mailchimp.prepare(news, [])
    mailchimp.push(news, [Record("gone@example.com"), Record("bounced@example.com")])
    fake.consent(["gone@example.com"], "unsubscribed", list_id=news)
    fake.consent(["bounced@example.com"], "bounced", list_id=news)
    result = mailchimp.push(news, [Record("gone@example.com"), Record("bounced@example.com")])
    assert {failure.code for failure in result.failures} == {"compliance_state"}
    state = fake.state(list=news)["accounts"][0]["audiences"][news]["members"]
    assert (state["gone@example.com"]["status"], state["bounced@example.com"]["status"]) == (
        "unsubscribed",
        "cleaned",
    )


def test_an_audience_deleted_at_mailchimp_does_not_stop_the_others(fake, audiences):
    news = audiences[0]
    fake.consent(["gone@example.com"], "unsubscribed", list_id=news)
    events = [e for page in read_all(["0000000000", news]) for e in page.events]
    assert [(event.email, event.list_id) for event in events] == [("gone@example.com", news)]
