"""The Mailchimp fake's consent control and read-back endpoints (mailchimp_api.md §12)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from fakes.testing import FakeControlError, RunningFake, running_fake

KEY = "demo0mailchimp0key-us21"


@pytest.fixture
def mc() -> Iterator[RunningFake]:
    with running_fake("mailchimp") as fake:
        yield fake


@pytest.fixture
def api(mc) -> str:
    return mc.base_url.format(dc="us21")


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = ("anystring", KEY)
        session.trust_env = False
        yield session


@pytest.fixture
def audience(mc) -> str:
    return next(iter(mc.state()["accounts"][0]["audiences"]))


def members(session, api, audience, **params) -> requests.Response:
    return session.get(f"{api}/lists/{audience}/members", params=params, timeout=5)


def subscribe(session, api, audience, *emails, status="subscribed"):
    body = {
        "members": [{"email_address": email, "status": status} for email in emails],
        "update_existing": True,
    }
    return session.post(f"{api}/lists/{audience}", json=body, timeout=5).json()


def test_the_control_unsubscribes_cleans_and_records_complaints(mc, session, api, audience):
    subscribe(session, api, audience, "ann@example.com", "bob@example.com", "cy@example.com")
    mc.consent(["ann@example.com"], "unsubscribed", list_id=audience, reason="Too many emails")
    mc.consent(["bob@example.com"], "bounced", at="2026-05-02T11:40:03+02:00")
    mc.consent(["cy@example.com"], "complained", list_id=audience, at="2026-05-03T08:00:00Z")

    state = mc.state(list=audience)["accounts"][0]["audiences"][audience]["members"]
    assert {email: member["status"] for email, member in state.items()} == {
        "ann@example.com": "unsubscribed",
        "bob@example.com": "cleaned",
        "cy@example.com": "unsubscribed",
    }
    bob = members(session, api, audience, status="cleaned").json()["members"][0]
    assert bob["last_changed"] == "2026-05-02T09:40:03+00:00"
    assert "unsubscribe_reason" not in bob
    ann, cy = members(session, api, audience, status="unsubscribed").json()["members"]
    assert ann["unsubscribe_reason"] == "Too many emails"
    reports = session.get(f"{api}/lists/{audience}/abuse-reports", timeout=5).json()
    assert reports["total_items"] == 1
    report = reports["abuse_reports"][0]
    assert (report["email_address"], report["date"], report["list_id"]) == (
        "cy@example.com",
        "2026-05-03T08:00:00+00:00",
        audience,
    )
    assert cy["last_changed"] == "2026-05-03T08:00:00+00:00"


def test_the_control_adds_an_address_to_the_audience_it_names_and_reports_the_unknown(
    mc, session, api, audience
):
    assert mc.consent(["new@example.com"], "unsubscribed", list_id=audience)["changed"] == 1
    assert mc.consent(["nobody@example.com"], "cleaned")["unknown"] == ["nobody@example.com"]
    with pytest.raises(FakeControlError):
        mc.consent(["a@example.com"], "resubscribed", list_id=audience)
    with pytest.raises(FakeControlError):
        mc.consent(["a@example.com"], "cleaned", list_id="no-such-audience")


def test_someone_opted_out_by_the_control_cannot_be_subscribed_again(mc, session, api, audience):
    subscribe(session, api, audience, "ann@example.com", "bob@example.com")
    mc.consent(["ann@example.com"], "unsubscribed", list_id=audience)
    mc.consent(["bob@example.com"], "bounced", list_id=audience)
    reply = subscribe(session, api, audience, "ann@example.com", "bob@example.com")
    assert len(reply["errors"]) == 2
    assert all("is in a compliance state" in error["error"] for error in reply["errors"])
    state = mc.state(list=audience)["accounts"][0]["audiences"][audience]["members"]
    assert {member["status"] for member in state.values()} == {"unsubscribed", "cleaned"}


def test_members_changed_since_a_time_are_read_with_its_offset_ignored(mc, session, api, audience):
    mc.consent(["old@example.com"], "unsubscribed", list_id=audience, at="2026-05-02T09:00:00Z")
    mc.consent(["new@example.com"], "unsubscribed", list_id=audience, at="2026-05-02T11:00:00Z")

    def since(value: str) -> list[str]:
        found = members(
            session, api, audience, status="unsubscribed", since_last_changed=value
        ).json()
        return [member["email_address"] for member in found["members"]]

    assert since("2026-05-02T10:00:00+00:00") == ["new@example.com"]
    # 10:00 at -02:00 is 12:00 UTC, but Mailchimp reads it as 10:00 UTC (§12): so does the fake.
    assert since("2026-05-02T10:00:00-02:00") == ["new@example.com"]
    assert since("2026-05-02T08:00:00+00:00") == ["old@example.com", "new@example.com"]
    before = members(
        session, api, audience, status="unsubscribed", before_last_changed="2026-05-02T10:00:00"
    ).json()
    assert [member["email_address"] for member in before["members"]] == ["old@example.com"]
    assert members(session, api, audience, since_last_changed="yesterday").status_code == 400


def test_unsubscribed_since_needs_the_unsubscribed_status(mc, session, api, audience):
    mc.consent(["a@example.com"], "unsubscribed", list_id=audience, at="2026-05-02T09:00:00Z")
    mc.consent(["b@example.com"], "unsubscribed", list_id=audience, at="2026-05-04T09:00:00Z")
    found = members(
        session, api, audience, status="unsubscribed", unsubscribed_since="2026-05-03T00:00:00Z"
    )
    assert [member["email_address"] for member in found.json()["members"]] == ["b@example.com"]
    refused = members(session, api, audience, status="cleaned", unsubscribed_since="2026-05-03")
    assert refused.status_code == 400
    assert refused.json()["title"] == "Invalid Resource"
    assert members(session, api, audience, unsubscribed_since="2026-05-03").status_code == 400


def test_members_are_sorted_paged_clamped_and_cut_to_the_fields_asked(mc, session, api, audience):
    emails = [f"p{n:04}@example.com" for n in range(1200)]
    for n, email in enumerate(emails[:3]):
        mc.consent([email], "unsubscribed", list_id=audience, at=f"2026-05-0{3 - n}T09:00:00Z")
    mc.consent(emails[3:], "unsubscribed", list_id=audience, at="2026-06-01T00:00:00Z")

    fields = "members.email_address,members.last_changed,total_items"
    ascending = members(
        session,
        api,
        audience,
        status="unsubscribed",
        sort_field="last_changed",
        sort_dir="ASC",
        count=5000,
        fields=fields,
    ).json()
    assert ascending["total_items"] == 1200
    assert len(ascending["members"]) == 1000  # count is clamped at 1,000
    assert [m["email_address"] for m in ascending["members"][:3]] == emails[2::-1]
    assert set(ascending) == {"members", "total_items"}
    assert set(ascending["members"][0]) == {"email_address", "last_changed"}
    last = members(
        session,
        api,
        audience,
        status="unsubscribed",
        sort_field="last_changed",
        sort_dir="DESC",
        count=1000,
        offset=1000,
    ).json()["members"]
    assert [m["email_address"] for m in last[-3:]] == emails[:3]
    assert members(session, api, audience, sort_field="email").status_code == 400


def test_archived_members_are_not_opted_out(mc, session, api, audience):
    subscribe(session, api, audience, "gone@example.com")
    session.delete(f"{api}/lists/{audience}/members/gone@example.com", timeout=5)
    assert members(session, api, audience, status="unsubscribed").json()["total_items"] == 0
    assert members(session, api, audience, status="archived").json()["total_items"] == 1
    assert members(session, api, audience, status="opted-out").status_code == 400


def test_a_read_sees_changes_made_between_two_pages(mc, session, api, audience):
    mc.consent(["a@example.com"], "unsubscribed", list_id=audience)
    assert members(session, api, audience, status="unsubscribed").json()["total_items"] == 1
    mc.consent(["b@example.com"], "unsubscribed", list_id=audience)
    subscribe(session, api, audience, "a@example.com", status="pending")
    found = members(session, api, audience, status="unsubscribed").json()["members"]
    assert [member["email_address"] for member in found] == ["b@example.com"]


def test_abuse_reports_are_paged(mc, session, api, audience):
    mc.consent([f"c{n}@example.com" for n in range(12)], "complained", list_id=audience)
    page = session.get(
        f"{api}/lists/{audience}/abuse-reports", params={"count": 5, "offset": 10}, timeout=5
    ).json()
    assert page["total_items"] == 12
    assert [r["email_address"] for r in page["abuse_reports"]] == [
        "c10@example.com",
        "c11@example.com",
    ]
