"""The Ortto fake's custom fields, values, tags and email permission (ortto_api.md §9)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from fakes.testing import RunningFake, running_fake


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


def merge(call, *people: dict) -> list[dict]:
    body = {"people": list(people), "merge_by": ["str::email"], "merge_strategy": 2}
    return call("person/merge", body).json()["people"]


def person(ortto, email: str) -> dict:
    return ortto.state()["accounts"][0]["people"][email]


def test_a_custom_field_is_created_with_an_id_from_its_type_and_name(call):
    body = {"type": "multi_select", "name": "Likes Food", "values": ["Tea", "Cake"]}
    created = call("person/custom-field/create", body).json()
    assert created["field_id"] == "sst:cm:likes-food"
    listed = call("person/custom-field/get", {}).json()["fields"]
    found = next(f["field"] for f in listed if f["field"]["id"] == "sst:cm:likes-food")
    assert (found["display_type"], found["dic_items"]) == ("multi_select", ["Tea", "Cake"])


@pytest.mark.parametrize(
    "body",
    [
        {"type": "aggregate", "name": "Sum"},
        {"type": "single_select", "name": "No values"},
        {"type": "text", "name": "Values", "values": ["a"]},
        {"type": "text", "name": "x" * 101},
    ],
)
def test_a_field_ortto_would_refuse_is_400(call, body):
    assert call("person/custom-field/create", body).status_code == 400


def test_a_duplicate_name_and_the_hundred_and_first_field_are_refused(call):
    existing = len(call("person/custom-field/get", {}).json()["fields"])
    for n in range(100 - existing):
        assert call("person/custom-field/create", {"type": "text", "name": f"F{n}"}).ok
    assert call("person/custom-field/create", {"type": "text", "name": "f0"}).status_code == 400
    assert (
        call("person/custom-field/create", {"type": "text", "name": "One more"}).status_code == 400
    )


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("text", "x" * 256),
        ("large_text", "x" * 4001),
        ("integer", 1.5),
        ("integer", "7"),
        ("bool", "yes"),
        ("date", "2027-03-09"),
        ("date", {"year": 2027, "month": 2, "day": 30}),
        ("time", "tomorrow"),
        ("single_select", "C"),
        ("multi_select", ["A", "C"]),
    ],
)
def test_a_value_the_field_cannot_take_fails_that_person_only(ortto, call, kind, value):
    values = {"values": ["A", "B"]} if "select" in kind else {}
    field_id = call("person/custom-field/create", {"type": kind, "name": "Field", **values}).json()[
        "field_id"
    ]
    replies = merge(
        call,
        {"fields": {"str::email": "good@example.org"}},
        {"fields": {"str::email": "bad@example.org", field_id: value}},
    )
    assert [r["status"] for r in replies] == ["created", "error"]
    assert replies[1]["error"]["code"] == "invalid-field"
    assert "bad@example.org" not in ortto.state()["accounts"][0]["people"]


def test_an_unknown_field_id_refuses_the_whole_request(call):
    body = {"people": [{"fields": {"str::email": "a@example.org", "str:cm:nope": "x"}}]}
    assert call("person/merge", body).status_code == 400


def test_values_tags_and_clearing(ortto, call):
    field_id = call("person/custom-field/create", {"type": "date", "name": "Renewal"}).json()[
        "field_id"
    ]
    day = {"year": 2027, "month": 3, "day": 9, "timezone": "UTC"}
    merge(call, {"fields": {"str::email": "a@example.org", field_id: day}, "tags": ["VIP", "New"]})
    assert person(ortto, "a@example.org")["fields"][field_id] == day
    merge(call, {"fields": {"str::email": "a@example.org", field_id: None}, "unset_tags": ["new"]})
    found = person(ortto, "a@example.org")
    assert field_id not in found["fields"] and found["tags"] == ["VIP"]
    both = merge(
        call, {"fields": {"str::email": "a@example.org"}, "tags": ["X"], "unset_tags": ["x"]}
    )
    assert both[0]["status"] == "error"


def test_a_new_person_gets_email_permission_unless_it_is_sent(ortto, call):
    merge(call, {"fields": {"str::email": "default@example.org"}})
    merge(call, {"fields": {"str::email": "off@example.org", "bol::p": False}})
    assert person(ortto, "default@example.org")["fields"]["bol::p"] is True
    assert person(ortto, "off@example.org")["fields"]["bol::p"] is False
