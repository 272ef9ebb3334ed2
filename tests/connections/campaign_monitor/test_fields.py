"""Campaign Monitor custom fields: listed with their types, created, converted, cleared, and
ConsentToTrack for new people (spec §10)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from responses import matchers

from connections.types.base import (
    DestinationField,
    FieldType,
    MemoryCredentialStore,
    Permanent,
    Record,
    SendOptions,
)
from connections.types.campaign_monitor.backend import CampaignMonitorBackend
from tests.connections.campaign_monitor.test_client import LIST_ID
from tests.connections.conftest import CM_API
from tests.connections.factories import campaign_monitor_credentials

FIELDS_URL = f"{CM_API}/lists/{LIST_ID}/customfields.json"
IMPORT_URL = f"{CM_API}/subscribers/{LIST_ID}/import.json"
LISTED = [
    {"FieldName": "Plan", "Key": "[plan]", "DataType": "Text", "FieldOptions": []},
    {"FieldName": "Age", "Key": "[age]", "DataType": "Number", "FieldOptions": []},
    {"FieldName": "Renewal", "Key": "[renewal]", "DataType": "Date", "FieldOptions": []},
    {"FieldName": "Tier", "Key": "[tier]", "DataType": "MultiSelectOne", "FieldOptions": ["Gold"]},
    {
        "FieldName": "Likes",
        "Key": "[likes]",
        "DataType": "MultiSelectMany",
        "FieldOptions": ["Tea", "Cake"],
    },
    {"FieldName": "Country", "Key": "[country]", "DataType": "Country", "FieldOptions": ["France"]},
    {"FieldName": "State", "Key": "[state]", "DataType": "USState", "FieldOptions": ["Ohio"]},
]


@pytest.fixture
def backend():
    return CampaignMonitorBackend(MemoryCredentialStore(campaign_monitor_credentials()))


@pytest.fixture
def fields(mocked, backend):
    mocked.get(FIELDS_URL, json=LISTED)
    listed = backend.list_fields(LIST_ID)
    return {field.name: field for field in listed}


def test_the_builtins_come_first_then_the_custom_fields_with_their_types(fields):
    assert [(f.key, f.builtin) for f in list(fields.values())[:3]] == [
        ("email", True),
        ("first_name", True),
        ("last_name", True),
    ]
    assert {name: f.type for name, f in fields.items() if not f.builtin} == {
        "Plan": FieldType.TEXT,
        "Age": FieldType.NUMBER,
        "Renewal": FieldType.DATE,
        "Tier": FieldType.SINGLE_SELECT,
        "Likes": FieldType.MULTI_SELECT,
        "Country": FieldType.COUNTRY,
        "State": FieldType.SINGLE_SELECT,
    }
    assert fields["Plan"].max_length == 250
    assert fields["Likes"].options == ("Tea", "Cake")


def test_a_created_field_has_the_key_campaign_monitor_returned(mocked, backend):
    mocked.post(
        FIELDS_URL,
        json="[renewaldate]",
        status=201,
        match=[
            matchers.json_params_matcher(
                {
                    "FieldName": "Renewal date",
                    "DataType": "Date",
                    "Options": [],
                    "VisibleInPreferenceCenter": True,
                }
            )
        ],
    )
    mocked.get(
        FIELDS_URL,
        json=[{"FieldName": "Renewal date", "Key": "[renewaldate]", "DataType": "Date"}],
    )
    created = backend.create_field(LIST_ID, "Renewal date", FieldType.DATE)
    assert (created.key, created.name, created.type) == ("[renewaldate]", "Renewal date", "date")


def test_a_boolean_field_cannot_be_created(backend):
    assert FieldType.BOOLEAN not in backend.creatable_field_types
    with pytest.raises(Permanent):
        backend.create_field(LIST_ID, "Has app", FieldType.BOOLEAN)


def test_prepare_fails_naming_a_mapped_field_the_list_no_longer_has(mocked, backend):
    mocked.get(FIELDS_URL, json=LISTED)
    gone = DestinationField("[website]", "Website", FieldType.TEXT)
    with pytest.raises(Permanent, match="“Website” no longer exists"):
        backend.prepare(LIST_ID, [gone])


@pytest.mark.parametrize(
    ("name", "value", "sent"),
    [
        ("Plan", "Pro", "Pro"),
        ("Plan", True, "true"),
        ("Age", 24, "24"),
        ("Age", Decimal("12.50"), "12.5"),
        ("Age", " 7 ", "7"),
        ("Renewal", date(2027, 3, 9), "2027/03/09"),
        ("Renewal", "2027-03-09", "2027/03/09"),
        ("Tier", "gold", "Gold"),
        ("Likes", ["cake", "Tea"], ["Cake", "Tea"]),
        ("Likes", "Tea, cake", ["Tea", "Cake"]),
        ("Country", "france", "France"),
        ("State", "Ohio", "Ohio"),
    ],
)
def test_values_are_converted_as_campaign_monitor_takes_them(fields, backend, name, value, sent):
    assert backend.convert(fields[name], value) == (sent, None)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("Age", "abc", "not a number"),
        ("Renewal", "next week", "not a date"),
        ("Renewal", date(1899, 12, 31), "outside the dates"),
        ("Tier", "Bronze", "not one of the choices"),
        ("Likes", "Tea, Coffee", "not one of the choices"),
    ],
)
def test_values_that_cannot_be_converted_are_refused_with_a_reason(
    fields, backend, name, value, reason
):
    with pytest.raises(ValueError) as refused:
        backend.convert(fields[name], value)
    assert reason in str(refused.value.args[0])


def test_a_text_over_250_characters_is_shortened_with_a_warning(fields, backend):
    assert backend.convert(fields["Plan"], "x" * 300) == ("x" * 250, "value_shortened")


def sent_subscribers(mocked) -> list[dict]:
    body = next(c.request.body for c in mocked.calls if c.request.url.endswith("import.json"))
    return json.loads(body)["Subscribers"]


def test_a_value_that_cannot_be_converted_fails_its_record_only(mocked, backend, fields):
    backend.prepare(LIST_ID, [fields["Age"]])
    mocked.post(IMPORT_URL, json={"FailureDetails": []}, status=201)
    result = backend.push(
        LIST_ID, [Record("a@x.com", fields={"[age]": "abc"}), Record("b@x.com", fields={})]
    )
    assert result.accepted == 1
    assert [(f.email, f.code) for f in result.failures] == [("a@x.com", "invalid_value")]
    assert "Age" in str(result.failures[0].message)
    assert [s["EmailAddress"] for s in sent_subscribers(mocked)] == ["b@x.com"]


def test_empty_values_clear_and_a_multi_select_repeats_its_key(mocked, backend, fields):
    backend.prepare(LIST_ID, [fields["Plan"], fields["Likes"]])
    mocked.post(IMPORT_URL, json={"FailureDetails": []}, status=201)
    backend.push(LIST_ID, [Record("a@x.com", fields={"[plan]": None, "[likes]": "Tea, Cake"})])
    assert sent_subscribers(mocked)[0]["CustomFields"] == [
        {"Key": "[plan]", "Value": "", "Clear": True},
        {"Key": "[likes]", "Value": "Tea"},
        {"Key": "[likes]", "Value": "Cake"},
    ]


def test_consent_to_track_is_given_to_new_people_and_unchanged_for_others(mocked, backend):
    mocked.get(FIELDS_URL, json=[])
    backend.prepare(LIST_ID, [], SendOptions(consent_to_track=True))
    mocked.post(IMPORT_URL, json={"FailureDetails": []}, status=201)
    backend.push(
        LIST_ID,
        [
            Record("new@x.com", new_to_list=True),
            Record("sent@x.com"),  # the export sent it before: its sync state says so
            Record("no@x.com", consent=False, new_to_list=True),
            Record("sent.no@x.com", consent=False),
        ],
    )
    body = json.loads(
        next(c.request.body for c in mocked.calls if c.request.url.endswith("import.json"))
    )
    assert [s["ConsentToTrack"] for s in body["Subscribers"]] == [
        "Yes",
        "Unchanged",
        "No",
        "Unchanged",
    ]
    assert body["Resubscribe"] is False
    # Who is new comes from the records: no subscriber is read.
    assert [call.request.url for call in mocked.calls] == [FIELDS_URL, IMPORT_URL]


def test_without_consent_from_the_export_no_subscriber_is_read(mocked, backend):
    mocked.get(FIELDS_URL, json=[])
    backend.prepare(LIST_ID, [])
    mocked.post(IMPORT_URL, json={"FailureDetails": []}, status=201)
    backend.push(LIST_ID, [Record("a@x.com", new_to_list=True)])
    assert [call.request.url for call in mocked.calls] == [FIELDS_URL, IMPORT_URL]
    assert sent_subscribers(mocked)[0]["ConsentToTrack"] == "Unchanged"


def test_preview_shows_the_values_as_sent(mocked, backend, fields):
    backend.prepare(LIST_ID, [fields["Renewal"], fields["Plan"]])
    rows = backend.preview(
        Record("a@x.com", "Ann", "Lee", {"[renewal]": date(2027, 1, 2), "[plan]": None})
    )
    assert rows == [
        ("Email address", "a@x.com"),
        ("Name", "Ann Lee"),
        ("Renewal", "2027/01/02"),
        ("Plan", "(cleared)"),
        ("Consent to track", "Unchanged (No when new)"),
    ]
