"""Ortto custom fields, values, tags and email permission on the wire (ortto_api.md §9)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from responses import matchers

from connections.types.base import (
    DestinationField,
    FieldsNotFound,
    FieldType,
    MemoryCredentialStore,
    Record,
    SendOptions,
)
from connections.types.ortto.backend import OrttoBackend

API = "https://api.ortto.test/v1"
AUDIENCE = {
    "id": "aud1",
    "name": "VIP",
    "filter": {"$and": [{"$bool_is_true": {"field_id": "bol:cm:vip-segment"}}]},
}
FIELDS = [
    {"id": "str:cm:plan", "name": "Plan", "display_type": "text"},
    {"id": "str:cm:notes", "name": "Notes", "display_type": "large_text"},
    {"id": "int:cm:visits", "name": "Visits", "display_type": "integer"},
    {"id": "int:cm:ltv", "name": "Lifetime value", "display_type": "currency"},
    {"id": "dtz:cm:renewal", "name": "Renewal", "display_type": "date"},
    {"id": "tme:cm:seen", "name": "Last seen", "display_type": "time"},
    {"id": "bol:cm:app", "name": "Has app", "display_type": "bool"},
    {"id": "str:cm:tier", "name": "Tier", "display_type": "single_select", "dic_items": ["Gold"]},
    {"id": "sst:cm:likes", "name": "Likes", "display_type": "multi_select", "dic_items": ["Tea"]},
    {"id": "phn:cm:mobile", "name": "Mobile", "display_type": "phone"},
    {"id": "bol:cm:vip-segment", "name": "VIP segment", "display_type": "bool"},
]


@pytest.fixture(autouse=True)
def ortto_urls(settings):
    settings.ORTTO_API_URLS = {"global": API, "au": API, "eu": API}


@pytest.fixture
def backend(mocked):
    mocked.post(f"{API}/audiences/get", json=[AUDIENCE])
    mocked.post(
        f"{API}/person/custom-field/get",
        json={"fields": [{"field": field, "tracked_value": True} for field in FIELDS]},
    )
    return OrttoBackend(MemoryCredentialStore({"api_key": "k", "region": "global"}))


@pytest.fixture
def fields(backend):
    return {field.name: field for field in backend.list_fields("aud1")}


def merges(mocked) -> list[dict]:
    return [
        json.loads(call.request.body)
        for call in mocked.calls
        if call.request.url.endswith("/person/merge")
    ]


def test_fields_are_listed_with_their_types_but_phones_and_the_audience_marker(fields):
    assert list(fields)[:3] == ["Email address", "First name", "Last name"]
    assert {name: f.type for name, f in fields.items() if not f.builtin} == {
        "Plan": FieldType.TEXT,
        "Notes": FieldType.TEXT,
        "Visits": FieldType.NUMBER,
        "Lifetime value": FieldType.NUMBER,
        "Renewal": FieldType.DATE,
        "Last seen": FieldType.DATETIME,
        "Has app": FieldType.BOOLEAN,
        "Tier": FieldType.SINGLE_SELECT,
        "Likes": FieldType.MULTI_SELECT,
    }
    assert (fields["Plan"].max_length, fields["Notes"].max_length) == (255, 4000)


@pytest.mark.parametrize(
    ("name", "value", "sent"),
    [
        ("Plan", 12, "12"),
        ("Visits", "7", 7),
        ("Lifetime value", "12.345", 12345),
        ("Renewal", date(2027, 3, 9), {"year": 2027, "month": 3, "day": 9, "timezone": "UTC"}),
        ("Last seen", datetime(2027, 3, 9, 10, 30, tzinfo=UTC), "2027-03-09T10:30:00Z"),
        ("Has app", "yes", True),
        ("Tier", "gold", "Gold"),
        ("Likes", "tea", ["Tea"]),
    ],
)
def test_values_are_converted_as_ortto_takes_them(fields, backend, name, value, sent):
    assert backend.convert(fields[name], value) == (sent, None)


def test_a_created_field_has_the_id_ortto_gave_it(mocked, backend):
    body = {"type": "multi_select", "name": "Likes", "track_changes": False, "values": ["Tea"]}
    mocked.post(
        f"{API}/person/custom-field/create",
        json={
            "name": "Likes",
            "field_id": "sst:cm:likes",
            "display_type": "multi_select",
            "values": ["Tea"],
        },
        match=[matchers.json_params_matcher(body)],
    )
    created = backend.create_field("aud1", "Likes", FieldType.MULTI_SELECT, ["Tea"])
    assert (created.key, created.type, created.options) == (
        "sst:cm:likes",
        "multi_select",
        ("Tea",),
    )


def test_prepare_fails_naming_a_field_deleted_in_ortto(backend):
    with pytest.raises(FieldsNotFound, match="“Score”"):
        backend.prepare("aud1", [DestinationField("int:cm:score", "Score", FieldType.NUMBER)])


def test_existing_people_are_merged_without_permission_and_new_ones_created_with_it(
    mocked, backend, fields
):
    backend.prepare("aud1", [fields["Plan"]], SendOptions(consent_to_track=True))
    mocked.post(
        f"{API}/person/merge",
        json={"people": [{"status": "merged", "person_id": "1"}, {"status": "ignored"}]},
    )
    mocked.post(f"{API}/person/merge", json={"people": [{"status": "created", "person_id": "2"}]})
    result = backend.push(
        "aud1",
        [
            Record(
                "old@x.com",
                fields={"str:cm:plan": None},
                tags=("VIP",),
                removed_tags=("VIP", "Old"),
            ),
            Record("new@x.com", fields={"str:cm:plan": "Pro"}),
        ],
    )
    assert (result.accepted, result.failures) == (2, [])
    first, second = merges(mocked)
    assert first["skip_non_existing"] is True and first["merge_strategy"] == 2
    assert first["people"][0] == {
        "fields": {"str::email": "old@x.com", "bol:cm:vip-segment": True, "str:cm:plan": None},
        "tags": ["VIP"],
        "unset_tags": ["Old"],
    }
    assert all("bol::p" not in person["fields"] for person in first["people"])
    assert second["skip_non_existing"] is False
    assert second["people"] == [
        {
            "fields": {
                "str::email": "new@x.com",
                "bol:cm:vip-segment": True,
                "str:cm:plan": "Pro",
                "bol::p": True,
            }
        }
    ]


def test_new_people_get_no_permission_when_the_export_gives_none(mocked, backend):
    backend.prepare("aud1", [])
    mocked.post(f"{API}/person/merge", json={"people": [{"status": "ignored"}]})
    mocked.post(f"{API}/person/merge", json={"people": [{"status": "created", "person_id": "2"}]})
    backend.push("aud1", [Record("new@x.com")])
    assert merges(mocked)[1]["people"][0]["fields"]["bol::p"] is False


def test_a_value_that_cannot_be_converted_fails_its_person_only(mocked, backend, fields):
    backend.prepare("aud1", [fields["Visits"]])
    mocked.post(f"{API}/person/merge", json={"people": [{"status": "merged", "person_id": "1"}]})
    result = backend.push(
        "aud1",
        [Record("bad@x.com", fields={"int:cm:visits": 1.5}), Record("ok@x.com", fields={})],
    )
    assert [(f.email, f.code) for f in result.failures] == [("bad@x.com", "invalid_value")]
    assert [p["fields"]["str::email"] for p in merges(mocked)[0]["people"]] == ["ok@x.com"]
