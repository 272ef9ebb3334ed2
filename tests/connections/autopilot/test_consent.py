"""Autopilot's consent read-back (autopilot_api.md §8): every contact paged, filtered here."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from connections.types.autopilot import backend as autopilot_backend
from connections.types.autopilot.backend import AutopilotBackend, consent_events
from connections.types.base import (
    AuthRevoked,
    ConsentState,
    MemoryCredentialStore,
    RateLimited,
    Transient,
)
from tests.connections.conftest import AP_API
from tests.connections.factories import API_KEY

SINCE = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
MAY_1 = 1777593600000  # 2026-05-01T00:00:00Z in epoch milliseconds
DELIVERY = "batchdelivery_C6413ED0-C68A-11E6-94C6-07E94AE2263B_1482219072355-48603240"


@pytest.fixture
def store():
    return MemoryCredentialStore({"api_key": API_KEY})


@pytest.fixture
def backend(store, settings):
    settings.AUTOPILOT_RATE_LIMIT = 0  # no pacing here: the pacing test sets its own
    return AutopilotBackend(store)


def contact(email, updated_at="2026-05-02T12:00:00.000Z", **rest):
    return {"Email": email, "contact_id": f"person_{email}", "updated_at": updated_at, **rest}


def test_the_flag_and_each_delivery_event_say_what_the_contact_did():
    unsubscribed = contact(
        "u@x.com", unsubscribed=True, mail_unsubscribed={DELIVERY: MAY_1, "other": MAY_1 + 5000}
    )
    bounced = contact("b@x.com", mail_hardbounced={DELIVERY: MAY_1}, mail_bounced={DELIVERY: 1})
    complained = contact("c@x.com", mail_complained={DELIVERY: MAY_1})
    flag_only = contact("f@x.com", unsubscribed=True)
    found = [
        (e.email, e.state, e.occurred_at, e.list_id)
        for item in (unsubscribed, bounced, complained, flag_only)
        for e in consent_events(item, None)
    ]
    may_1 = datetime(2026, 5, 1, tzinfo=UTC)
    assert found == [
        ("u@x.com", ConsentState.UNSUBSCRIBED, may_1 + timedelta(seconds=5), ""),
        ("b@x.com", ConsentState.BOUNCED, may_1, ""),
        ("c@x.com", ConsentState.COMPLAINED, may_1, ""),
        ("f@x.com", ConsentState.UNSUBSCRIBED, None, ""),
    ]


def test_a_soft_bounce_an_empty_event_or_a_contact_without_an_address_gives_nothing():
    assert consent_events(contact("s@x.com", mail_bounced={DELIVERY: MAY_1}), None) == []
    assert consent_events(contact("e@x.com", mail_unsubscribed={}, unsubscribed=False), None) == []
    assert consent_events({"unsubscribed": True, "contact_id": "person_1"}, None) == []


def test_only_contacts_changed_since_less_the_overlap_are_kept():
    oldest = SINCE - autopilot_backend.CONSENT_OVERLAP
    stale = contact("stale@x.com", "2026-05-02T10:59:59.000Z", unsubscribed=True)
    within = contact("within@x.com", "2026-05-02T11:00:00.000Z", unsubscribed=True)
    # A delivery event that left updated_at alone still counts.
    event_only = contact(
        "event@x.com", "2026-01-01T00:00:00.000Z", mail_hardbounced={"d": MAY_1 * 2}
    )
    kept = [e.email for item in (stale, within, event_only) for e in consent_events(item, oldest)]
    assert kept == ["within@x.com", "event@x.com"]


def test_it_pages_by_bookmark_and_resumes_from_a_stored_cursor(mocked, store, backend):
    first = [contact(f"p{n}@x.com") for n in range(99)] + [contact("out@x.com", unsubscribed=True)]
    mocked.get(
        f"{AP_API}/contacts",
        json={"contacts": first, "total_contacts": 150, "bookmark": "person_out"},
    )
    page = backend.read_consent(["contactlist_ignored"], since=SINCE)
    assert [e.email for e in page.events] == ["out@x.com"]
    assert json.loads(page.cursor) == {"b": "person_out", "s": SINCE.isoformat()}
    last = [contact("bounced@x.com", mail_hardbounced={DELIVERY: MAY_1 * 2})]
    mocked.get(f"{AP_API}/contacts/person_out", json={"contacts": last, "total_contacts": 150})
    resumed = AutopilotBackend(store).read_consent([], since=None, cursor=page.cursor)
    assert [(e.email, e.state) for e in resumed.events] == [("bounced@x.com", ConsentState.BOUNCED)]
    assert resumed.cursor is None  # the last page has no bookmark
    assert [call.request.url for call in mocked.calls] == [
        f"{AP_API}/contacts",
        f"{AP_API}/contacts/person_out",
    ]
    assert mocked.calls[0].request.headers["autopilotapikey"] == API_KEY


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            429,
            {
                "error": "Too Many Requests",
                "message": "You have exceeded your request rate of 5 r/s.",
            },
            RateLimited,
        ),
        (500, {"error": "Internal Server Error", "message": "boom"}, Transient),
        (
            401,
            {"error": "Unauthorized", "message": "Provided autopilotapikey not valid."},
            AuthRevoked,
        ),
    ],
)
def test_errors_are_typed_as_for_a_push(mocked, store, backend, status, body, error):
    mocked.get(f"{AP_API}/contacts", json=body, status=status)
    with pytest.raises(error):
        backend.read_consent([], since=SINCE)
    assert bool(store.auth_failures) == (error is AuthRevoked)


def test_reads_are_spaced_to_the_services_five_requests_a_second(mocked, settings, monkeypatch):
    """Whichever backend reads: a read may build a new one for each page."""
    settings.AUTOPILOT_RATE_LIMIT = 5
    waits = []
    monkeypatch.setattr(autopilot_backend.time, "monotonic", lambda: 100.0)
    monkeypatch.setattr(autopilot_backend.time, "sleep", waits.append)
    monkeypatch.setattr(AutopilotBackend, "_next_reads", {})
    mocked.get(f"{AP_API}/contacts", json={"contacts": [], "total_contacts": 0})
    store = MemoryCredentialStore({"api_key": API_KEY})
    for _read in range(3):
        AutopilotBackend(store).read_consent([], since=None)
    AutopilotBackend(MemoryCredentialStore({"api_key": "another-key"})).read_consent([], since=None)
    assert waits == pytest.approx([0.2, 0.4])


def test_it_refuses_a_cursor_that_is_not_its_own(backend):
    with pytest.raises(ValueError, match="cursor"):
        backend.read_consent([], since=None, cursor='{"i":0,"k":"bounced"}')
