"""The Ortto fake's consent control and read-back endpoints (ortto_api.md §10)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from fakes.testing import FakeControlError, RunningFake, running_fake

PERMISSION_OFF = {"$bol::is": {"field_id": "bol::p", "value": False}}


@pytest.fixture
def ortto() -> Iterator[RunningFake]:
    with running_fake("ortto", rate_limit=0) as fake:
        yield fake


@pytest.fixture
def call(ortto):
    session = requests.Session()
    session.headers["X-Api-Key"] = "demo-ortto-key"
    session.trust_env = False

    def call(path: str, body: dict, method: str = "POST") -> requests.Response:
        return session.request(method, f"{ortto.base_url}/{path}", json=body, timeout=5)

    yield call
    session.close()


def merge(call, *people: dict, **options) -> list[dict]:
    """Merge people given by their fields."""
    body = {
        "people": [{"fields": fields} for fields in people],
        "merge_by": ["str::email"],
        "merge_strategy": 2,
        **options,
    }
    return call("person/merge", body).json()["people"]


def without_permission(call, **body) -> dict:
    query = {"fields": ["str::email", "bol::p"], "filter": PERMISSION_OFF, **body}
    return call("person/get", query).json()


def test_unsubscribed_turns_the_email_permission_off(ortto, call):
    merge(call, {"str::email": "ann@example.com"}, {"str::email": "bob@example.com"})
    ortto.consent(["Ann@example.com", "new@example.com"], "unsubscribed")
    found = without_permission(call, limit=500)
    assert [c["fields"] for c in found["contacts"]] == [
        {"str::email": "ann@example.com", "bol::p": False},
        {"str::email": "new@example.com", "bol::p": False},
    ]
    assert found["meta"]["total_matches"] == 2
    assert found["meta"]["total_contacts"] == 3
    assert (found["offset"], found["next_offset"], found["has_more"]) == (0, 2, False)


def test_bounces_and_complaints_go_on_the_suppression_list(ortto, call):
    ortto.consent(["b@example.com"], "bounced")
    ortto.consent(["c@example.com"], "complained", at="2026-05-02T10:00:00Z")
    found = call("suppression-list/email/get", {"limit": 500, "offset": 0}).json()
    assert found == {
        "emails": [{"email": "b@example.com"}, {"email": "c@example.com"}],
        "next_offset": 2,
        "has_more": False,
    }
    descending = call("suppression-list/email/get", {"sort": "email", "sort_order": "desc"})
    assert [entry["email"] for entry in descending.json()["emails"]] == [
        "c@example.com",
        "b@example.com",
    ]
    with pytest.raises(FakeControlError):
        ortto.consent(["a@example.com"], "resubscribed")


def test_a_suppressed_or_unsubscribed_person_is_not_subscribed_again(ortto, call):
    merge(call, {"str::email": "ann@example.com"})
    ortto.consent(["ann@example.com"], "unsubscribed")
    ortto.consent(["bob@example.com"], "bounced")
    replies = merge(
        call,
        {"str::email": "ann@example.com", "str::first": "Ann"},
        {"str::email": "bob@example.com", "bol::p": True},
        suppression_list_field_id="str::email",
    )
    assert [reply["status"] for reply in replies] == ["merged", "error"]
    assert replies[1]["error"]["code"] == "suppressed"
    ann = ortto.state()["accounts"][0]["people"]["ann@example.com"]
    assert ann["fields"]["bol::p"] is False


def test_people_are_paged_by_next_offset_or_cursor_id(ortto, call):
    ortto.consent([f"p{n:04}@example.com" for n in range(1200)], "unsubscribed")
    first = without_permission(call, limit=500)
    assert (len(first["contacts"]), first["next_offset"], first["has_more"]) == (500, 500, True)
    by_cursor = without_permission(call, limit=500, cursor_id=first["cursor_id"])
    by_offset = without_permission(call, limit=500, offset=500)
    assert by_cursor["contacts"] == by_offset["contacts"]
    last = without_permission(call, limit=500, offset=1000)
    assert (len(last["contacts"]), last["has_more"]) == (200, False)
    assert call("person/get", {"cursor_id": "not-an-id"}).status_code == 400


@pytest.mark.parametrize("limit", [501, 0, None])
def test_a_limit_over_500_or_none_falls_back_to_50(ortto, call, limit):
    ortto.consent([f"p{n:04}@example.com" for n in range(120)], "unsubscribed")
    assert len(without_permission(call, limit=limit)["contacts"]) == 50
    suppressed = call("suppression-list/email/get", {"limit": limit}).json()
    assert suppressed["emails"] == []


def test_the_permission_filter_reads_an_unset_permission_as_on(ortto, call):
    merge(call, {"str::email": "on@example.com"})
    ortto.consent(["off@example.com"], "unsubscribed")
    on = call("person/get", {"filter": {"$bol::is": {"field_id": "bol::p", "value": True}}})
    assert [c["fields"]["str::email"] for c in on.json()["contacts"]] == ["on@example.com"]
    either = {"$or": [PERMISSION_OFF, {"$bol::is": {"field_id": "bol::p", "value": True}}]}
    assert len(call("person/get", {"filter": either}).json()["contacts"]) == 2
    unknown = call("person/get", {"filter": {"$str::is": {"field_id": "str::email"}}})
    assert unknown.status_code == 400
