"""Mailchimp merge fields, tags and the status of new people (mailchimp_api.md §9, §11)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from responses import matchers

from connections.types.base import (
    DestinationField,
    FieldsNotFound,
    FieldType,
    MemoryCredentialStore,
    Permanent,
    Record,
    SendOptions,
)
from connections.types.mailchimp.backend import MailchimpBackend
from tests.connections.mailchimp.test_client import API, AUDIENCE, KEY

MERGE_URL = f"{API}/lists/{AUDIENCE}/merge-fields"
BATCH_URL = f"{API}/lists/{AUDIENCE}"
MERGE_FIELDS = [
    {"merge_id": 1, "tag": "FNAME", "name": "First Name", "type": "text"},
    {"merge_id": 2, "tag": "LNAME", "name": "Last Name", "type": "text"},
    {"merge_id": 3, "tag": "ADDRESS", "name": "Address", "type": "address"},
    {
        "merge_id": 4,
        "tag": "PLAN",
        "name": "Plan",
        "type": "dropdown",
        "options": {"choices": ["Free", "Pro"]},
    },
    {"merge_id": 5, "tag": "SCORE", "name": "Score", "type": "number"},
    {"merge_id": 6, "tag": "RENEWAL", "name": "Renewal", "type": "date"},
    {"merge_id": 7, "tag": "BDAY", "name": "Birthday", "type": "birthday"},
    {"merge_id": 8, "tag": "CITY", "name": "City", "type": "text"},
    {
        "merge_id": 9,
        "tag": "COLOR",
        "name": "Colour",
        "type": "radio",
        "options": {"choices": ["Red"]},
    },
]


@pytest.fixture(autouse=True)
def mailchimp_urls(settings):
    settings.MAILCHIMP_API_URL = "https://{dc}.mc.test/3.0"
    settings.REDIS_URL = ""


@pytest.fixture
def backend():
    return MailchimpBackend(MemoryCredentialStore({"api_key": KEY}))


@pytest.fixture
def fields(mocked, backend):
    mocked.get(MERGE_URL, json={"merge_fields": MERGE_FIELDS, "total_items": len(MERGE_FIELDS)})
    return {field.name: field for field in backend.list_fields(AUDIENCE)}


def reply(new=(), updated=(), errors=()):
    return {
        "new_members": [{"email_address": email} for email in new],
        "updated_members": [{"email_address": email} for email in updated],
        "errors": list(errors),
    }


def batches(mocked) -> list[dict]:
    return [
        json.loads(call.request.body)
        for call in mocked.calls
        if call.request.method == "POST" and call.request.url.startswith(BATCH_URL + "?")
    ]


def test_the_names_are_builtins_and_addresses_are_not_offered(fields):
    assert [(f.key, f.builtin) for f in list(fields.values())[:3]] == [
        ("email", True),
        ("first_name", True),
        ("last_name", True),
    ]
    assert {f.key: f.type for f in fields.values() if not f.builtin} == {
        "PLAN": FieldType.SINGLE_SELECT,
        "SCORE": FieldType.NUMBER,
        "RENEWAL": FieldType.DATE,
        "BDAY": FieldType.DATE,
        "CITY": FieldType.TEXT,
        "COLOR": FieldType.SINGLE_SELECT,
    }
    assert fields["Plan"].options == ("Free", "Pro")
    assert fields["City"].max_length == 255


def test_a_created_merge_field_has_the_tag_mailchimp_gave_it(mocked, backend):
    body = {"name": "Plan", "type": "dropdown", "required": False, "options": {"choices": ["A"]}}
    mocked.post(
        MERGE_URL,
        json={"merge_id": 9, "tag": "MMERGE9", "name": "Plan", "type": "dropdown", **body},
        match=[matchers.json_params_matcher(body)],
    )
    created = backend.create_field(AUDIENCE, "Plan", FieldType.SINGLE_SELECT, ["A"])
    assert (created.key, created.type, created.options) == ("MMERGE9", "single_select", ("A",))


def test_there_is_no_boolean_merge_field_to_create(backend):
    with pytest.raises(Permanent):
        backend.create_field(AUDIENCE, "Has app", FieldType.BOOLEAN)


def test_prepare_fails_naming_a_merge_field_deleted_at_mailchimp(mocked, backend):
    mocked.get(MERGE_URL, json={"merge_fields": MERGE_FIELDS, "total_items": len(MERGE_FIELDS)})
    with pytest.raises(FieldsNotFound, match="“Lifetime value”"):
        backend.prepare(AUDIENCE, [DestinationField("LTV", "Lifetime value", FieldType.NUMBER)])


@pytest.mark.parametrize(
    ("name", "value", "sent"),
    [
        ("City", "Oslo", "Oslo"),
        ("City", False, "false"),
        ("City", ["a", "b"], "a, b"),
        ("Score", "12", 12),
        ("Score", Decimal("2.50"), 2.5),
        ("Renewal", date(2027, 3, 9), "2027-03-09"),
        ("Birthday", "1990-12-24", "12/24"),
        ("Plan", "pro", "Pro"),
    ],
)
def test_values_are_converted_as_mailchimp_takes_them(fields, backend, name, value, sent):
    assert backend.convert(fields[name], value) == (sent, None)


def test_unconvertible_values_and_long_texts(fields, backend):
    with pytest.raises(ValueError):
        backend.convert(fields["Score"], "lots")
    with pytest.raises(ValueError):
        backend.convert(fields["Plan"], "Gold")
    assert backend.convert(fields["City"], "x" * 300) == ("x" * 255, "value_shortened")


def test_mapped_values_tags_and_clearing_go_in_the_batch(mocked, backend, fields):
    backend.prepare(AUDIENCE, [fields["City"], fields["Score"]])
    mocked.post(BATCH_URL, json=reply(new=["a@x.com"]))
    result = backend.push(
        AUDIENCE,
        [Record("a@x.com", "Ann", fields={"CITY": None, "SCORE": 3}, tags=("vip",))],
    )
    assert (result.accepted, result.failures) == (1, [])
    (member,) = batches(mocked)[0]["members"]
    assert member == {
        "email_address": "a@x.com",
        "status": "subscribed",
        "merge_fields": {"FNAME": "Ann", "CITY": "", "SCORE": 3},
        "tags": ["vip"],
    }


SEGMENTS_URL = f"{API}/lists/{AUDIENCE}/segments"


def test_leavers_lose_their_tags_in_a_few_bulk_calls_not_one_per_member(mocked, backend):
    segments = [{"id": 11, "name": "Gold"}, {"id": 12, "name": "golf"}, {"id": 13, "name": "x"}]
    mocked.get(SEGMENTS_URL, json={"segments": segments, "total_items": 3})
    for segment_id in (11, 12):
        mocked.post(f"{SEGMENTS_URL}/{segment_id}", json={"errors": []})
    leavers = [
        Record(f"p{n}@x.com", removed_tags=("gold", "golf") if n % 2 else ("GOLD", "chess"))
        for n in range(40)
    ]

    result = backend.push(AUDIENCE, leavers)

    assert (result.accepted, result.failures) == (40, [])
    assert len(mocked.calls) == 3  # the tags read once, then one call per tag the audience has
    removed = {
        call.request.url.rsplit("/", 1)[1]: json.loads(call.request.body)["members_to_remove"]
        for call in mocked.calls[1:]
    }
    assert removed["11"] == [f"p{n}@x.com" for n in range(40)]
    assert removed["12"] == [f"p{n}@x.com" for n in range(1, 40, 2)]


def test_a_leaver_the_tag_segment_refuses_is_a_failure_of_that_leaver_only(mocked, backend):
    mocked.get(SEGMENTS_URL, json={"segments": [{"id": 11, "name": "gold"}], "total_items": 1})
    refusal = {"email_addresses": ["b@x.com"], "error": "Email address is invalid"}
    mocked.post(f"{SEGMENTS_URL}/11", json={"errors": [refusal]})

    result = backend.push(
        AUDIENCE,
        [Record("a@x.com", removed_tags=("gold",)), Record("b@x.com", removed_tags=("gold",))],
    )

    assert result.accepted == 1
    assert [(failure.email, failure.message) for failure in result.failures] == [
        ("b@x.com", "Email address is invalid")
    ]


def test_pending_creates_new_people_pending_and_keeps_the_others_as_they_are(
    mocked, backend, fields
):
    backend.prepare(AUDIENCE, [], SendOptions(new_subscriber_status="pending"))
    exists = {"error_code": "ERROR_CONTACT_EXISTS", "error": "already a list member"}
    mocked.post(
        BATCH_URL,
        json=reply(
            new=["new@x.com"],
            errors=[{"email_address": e, **exists} for e in ("old@x.com", "wait@x.com")],
        ),
        match=[matchers.json_params_matcher({"update_existing": False}, strict_match=False)],
    )
    mocked.get(
        f"{API}/lists/{AUDIENCE}/members",
        json={"members": [{"email_address": "wait@x.com"}], "total_items": 1},
    )
    mocked.post(
        BATCH_URL,
        json=reply(updated=["old@x.com", "wait@x.com"]),
        match=[matchers.json_params_matcher({"update_existing": True}, strict_match=False)],
    )
    result = backend.push(
        AUDIENCE, [Record("new@x.com"), Record("old@x.com"), Record("wait@x.com")]
    )
    assert (result.accepted, result.failures) == (3, [])
    first, second = batches(mocked)
    assert [m["status"] for m in first["members"]] == ["pending"] * 3
    assert {m["email_address"]: m["status"] for m in second["members"]} == {
        "old@x.com": "subscribed",
        "wait@x.com": "pending",
    }


def test_a_status_other_than_subscribed_or_pending_is_refused(backend):
    with pytest.raises(Permanent):
        backend.prepare(AUDIENCE, [], SendOptions(new_subscriber_status="unsubscribed"))


def test_a_merge_value_mailchimp_refuses_is_a_lasting_refusal(mocked, backend, fields):
    backend.prepare(AUDIENCE, [fields["City"]])
    refused = {
        "email_address": "a@x.com",
        "error": "Merge field CITY: the value is longer than 255 characters.",
        "error_code": "ERROR_GENERIC",
        "field": "merge_fields.CITY",
    }
    mocked.post(BATCH_URL, json=reply(errors=[refused]))
    result = backend.push(AUDIENCE, [Record("a@x.com", fields={"CITY": "Oslo"})])
    assert [(f.email, f.code) for f in result.failures] == [("a@x.com", "invalid_value")]
    assert "invalid_value" in backend.lasting_refusal_codes
