"""Autopilot custom fields on the wire (autopilot_api.md §7)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from connections.types.autopilot.backend import AutopilotBackend
from connections.types.base import DestinationField, FieldType, MemoryCredentialStore, Record
from tests.connections.conftest import AP_API
from tests.connections.factories import API_KEY

LIST_ID = "contactlist_AAAA-1111"


@pytest.fixture
def backend():
    return AutopilotBackend(MemoryCredentialStore({"api_key": API_KEY}))


@pytest.fixture
def fields(mocked, backend):
    mocked.get(
        f"{AP_API}/contacts/custom_fields",
        json=[
            {"name": "Loyalty Tier", "fieldType": "string"},
            {"name": "Visits", "fieldType": "integer"},
            {"name": "Score", "fieldType": "float"},
            {"name": "Renewal", "fieldType": "date"},
            {"name": "Has app", "fieldType": "boolean"},
            {"name": "Odd", "fieldType": "geo"},
        ],
    )
    return {field.name: field for field in backend.list_fields(LIST_ID)}


def test_fields_are_keyed_by_type_and_name(fields):
    assert list(fields)[:3] == ["Email address", "First name", "Last name"]
    assert {f.key: f.type for f in fields.values() if not f.builtin} == {
        "string--Loyalty--Tier": FieldType.TEXT,
        "integer--Visits": FieldType.NUMBER,
        "float--Score": FieldType.NUMBER,
        "date--Renewal": FieldType.DATE,
        "boolean--Has--app": FieldType.BOOLEAN,
    }


@pytest.mark.parametrize(
    ("name", "value", "sent"),
    [
        ("Loyalty Tier", ["a", "b"], "a, b"),
        ("Visits", "12", 12),
        ("Score", "2.5", 2.5),
        ("Renewal", date(2027, 3, 9), "2027-03-09T00:00:00.000Z"),
        ("Has app", "no", False),
    ],
)
def test_values_are_converted_as_autopilot_takes_them(fields, backend, name, value, sent):
    assert backend.convert(fields[name], value) == (sent, None)


def test_an_integer_field_refuses_a_fraction(fields, backend):
    with pytest.raises(ValueError):
        backend.convert(fields["Visits"], 1.5)


def test_creating_a_field_makes_no_call_and_names_the_key_the_first_value_creates(mocked, backend):
    created = backend.create_field(LIST_ID, "Renewal  date", FieldType.DATE)
    assert (created.key, created.name) == ("date--Renewal--date", "Renewal  date")
    assert len(mocked.calls) == 0
    assert FieldType.SINGLE_SELECT not in backend.creatable_field_types


def test_clearing_sends_null_and_unsubscribed_is_never_sent(mocked, backend):
    plan = DestinationField("string--Plan", "Plan", FieldType.TEXT)
    backend.prepare(LIST_ID, [plan])
    mocked.post(f"{AP_API}/contacts", json={"email_contact_map": {"a@x.com": "person_A"}})
    result = backend.push(LIST_ID, [Record("a@x.com", fields={plan.key: None}, consent=False)])
    assert (result.accepted, result.failures) == (1, [])
    (contact,) = json.loads(mocked.calls[0].request.body)["contacts"]
    assert contact == {"Email": "a@x.com", "_autopilot_list": LIST_ID, "custom": {plan.key: None}}
