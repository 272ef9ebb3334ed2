"""The Ortto client and backend against the contract's bodies (ortto_api.md)."""

from __future__ import annotations

import json

import pytest
import requests

from connections.types.base import (
    AuthRevoked,
    ListNotFound,
    MemoryCredentialStore,
    Permanent,
    RateLimited,
    Record,
    Transient,
)
from connections.types.ortto.backend import OrttoBackend, marker_of
from connections.types.ortto.client import OrttoClient

EU = "https://api.eu.ortto.test/v1"
AUDIENCE = {
    "id": "aud1",
    "name": "VIP",
    "filter": {"$and": [{"$bool_is_true": {"field_id": "bol:cm:vip-segment"}}]},
}


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


@pytest.fixture
def backend(store):
    return OrttoBackend(store)


def test_the_key_goes_in_x_api_key_to_the_regions_host(mocked, store):
    mocked.post(f"{EU}/audiences/get", json=[AUDIENCE])
    assert OrttoClient(store).audiences() == [AUDIENCE]
    request = mocked.calls[0].request
    assert request.headers["X-Api-Key"] == "k3y"
    assert json.loads(request.body) == {"limit": 40, "offset": 0, "with_filter": True}


def test_the_marker_is_the_yes_no_field_the_audience_filter_uses():
    assert marker_of(AUDIENCE) == "bol:cm:vip-segment"
    assert marker_of({"filter": {"$and": [{"$str_is": {"field_id": "str::email"}}]}}) == ""


@pytest.mark.parametrize(
    ("response", "error_class"),
    [
        ({"status": 400, "json": {"error": {"code": "bad-request", "message": "x"}}}, Permanent),
        ({"status": 401, "json": {"error": {"code": "unauthorized", "message": "x"}}}, AuthRevoked),
        ({"status": 404, "json": {"error": {"code": "not-found", "message": "x"}}}, Permanent),
        ({"status": 400, "body": "plain text"}, Permanent),
        ({"status": 400, "json": {"error": "flat"}}, Permanent),
        ({"status": 500, "json": {}}, Transient),
        ({"status": 503, "body": ""}, Transient),
    ],
)
def test_each_error_of_the_contract_becomes_its_typed_error(mocked, store, response, error_class):
    mocked.post(f"{EU}/audiences/get", **response)
    with pytest.raises(error_class):
        OrttoClient(store).audiences()


def test_a_429_waits_as_long_as_try_in_seconds_says(mocked, store):
    body = {"error": {"code": "rate-limit", "message": "rate limit", "try-in-seconds": 10}}
    mocked.post(f"{EU}/audiences/get", status=429, json=body)
    mocked.post(f"{EU}/audiences/get", status=429, json={})
    with pytest.raises(RateLimited) as hinted:
        OrttoClient(store).audiences()
    with pytest.raises(RateLimited) as unhinted:
        OrttoClient(store).audiences()
    assert (hinted.value.wait, hinted.value.hinted, unhinted.value.hinted) == (10, True, False)


@pytest.mark.parametrize("failure", [requests.Timeout, requests.ConnectionError])
def test_timeouts_and_dropped_connections_are_transient(mocked, store, failure):
    mocked.post(f"{EU}/audiences/get", body=failure("boom"))
    with pytest.raises(Transient):
        OrttoClient(store).audiences()


def test_a_batch_merges_people_with_the_marker_set_and_maps_refusals(mocked, backend):
    mocked.post(f"{EU}/audiences/get", json=[AUDIENCE])
    people = [
        {"person_id": "p1", "status": "created"},
        {"status": "error", "error": {"code": "suppressed", "message": "on the list"}},
        {"status": "error", "error": {"code": "invalid-email", "message": "bad"}},
    ]
    mocked.post(f"{EU}/person/merge", json={"people": people})
    result = backend.push("aud1", [Record("a@x.com", "Ann"), Record("b@x.com"), Record("c@x")])
    assert [(f.email, f.code) for f in result.failures] == [
        ("b@x.com", "suppressed"),
        ("c@x", "invalid-email"),
    ]
    body = json.loads(mocked.calls[-1].request.body)
    assert body["people"][0] == {
        "fields": {"str::email": "a@x.com", "bol:cm:vip-segment": True, "str::first": "Ann"}
    }
    assert (body["merge_by"], body["merge_strategy"], body["async"]) == (["str::email"], 2, False)
    assert "bol::p" not in json.dumps(body)  # never touches the email permission


def permissions(*people: tuple[str, bool | None]) -> dict:
    """A ``person/subscriptions`` reply; None for someone Ortto does not hold."""
    return {
        "people": [
            {"person_status": "not-found", "email": email}
            if allowed is None
            else {"person_status": "merged", "email": email, "email_permissions": allowed}
            for email, allowed in people
        ]
    }


def test_leavers_get_the_marker_cleared_and_are_never_archived(mocked, backend):
    mocked.post(f"{EU}/audiences/get", json=[AUDIENCE])
    mocked.post(
        f"{EU}/person/subscriptions", json=permissions(("a@x.com", True), ("b@x.com", None))
    )
    mocked.post(
        f"{EU}/person/merge", json={"people": [{"status": "merged"}, {"status": "ignored"}]}
    )
    result = backend.remove("aud1", ["a@x.com", "b@x.com"])
    assert (result.accepted, result.opted_out) == (2, [])
    body = json.loads(mocked.calls[-1].request.body)
    assert body["skip_non_existing"] is True
    assert body["people"][0]["fields"] == {"str::email": "a@x.com", "bol:cm:vip-segment": False}
    assert not any("archive" in call.request.url for call in mocked.calls)


def test_an_audience_that_is_gone_raises_list_not_found(mocked, backend):
    mocked.post(f"{EU}/audiences/get", json=[AUDIENCE])
    with pytest.raises(ListNotFound):
        backend.push("gone", [Record("a@x.com")])


def test_an_audience_without_a_marker_stops_the_export_with_what_to_do(mocked, backend):
    mocked.post(f"{EU}/audiences/get", json=[{"id": "aud1", "name": "All", "filter": {}}])
    with pytest.raises(Permanent, match="Yes/No custom field"):
        backend.push("aud1", [Record("a@x.com")])


def test_leavers_without_email_permission_are_reported_opted_out(mocked, backend):
    """Should Ortto lose the person later (archived or deleted there), a return would create
    them again with the default permission: the export remembers the opt-out instead."""
    mocked.post(f"{EU}/audiences/get", json=[AUDIENCE])
    mocked.post(
        f"{EU}/person/subscriptions", json=permissions(("out@x.com", False), ("in@x.com", True))
    )
    mocked.post(f"{EU}/person/merge", json={"people": [{"status": "merged"}] * 2})
    result = backend.remove("aud1", ["out@x.com", "in@x.com"])
    assert (result.accepted, result.failures, result.opted_out) == (2, [], ["out@x.com"])
    asked = json.loads(mocked.calls[1].request.body)
    assert asked == {"people": [{"email": "out@x.com"}, {"email": "in@x.com"}]}


def test_a_returning_person_without_email_permission_is_not_sent_again(mocked, backend):
    mocked.post(f"{EU}/audiences/get", json=[AUDIENCE])
    mocked.post(
        f"{EU}/person/subscriptions", json=permissions(("out@x.com", False), ("back@x.com", None))
    )
    mocked.post(f"{EU}/person/merge", json={"people": [{"status": "created"}]})
    batch = [Record("out@x.com", returning=True), Record("back@x.com", returning=True)]
    result = backend.push("aud1", batch)
    assert result.accepted == 1
    assert [(f.email, f.code) for f in result.failures] == [("out@x.com", "unsubscribed")]
    assert result.failures[0].code in backend.opted_out_codes
    sent = json.loads(mocked.calls[-1].request.body)["people"]
    assert [person["fields"]["str::email"] for person in sent] == ["back@x.com"]
