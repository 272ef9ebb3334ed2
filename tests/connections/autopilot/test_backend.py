"""The Autopilot backend: what the export engine and the Test connection button see."""

from __future__ import annotations

import json

import pytest
import requests

from connections.types.autopilot.backend import AutopilotBackend
from connections.types.base import (
    AuthRevoked,
    DestinationField,
    FieldType,
    ListNotFound,
    MemoryCredentialStore,
    Record,
    StepStatus,
    Transient,
)
from tests.connections.conftest import AP_API
from tests.connections.factories import API_KEY

LIST_ID = "contactlist_AAAA-1111"


@pytest.fixture
def backend():
    return AutopilotBackend(MemoryCredentialStore({"api_key": API_KEY}))


def test_push_upserts_into_the_list_and_reports_contacts_the_service_did_not_take(mocked, backend):
    mocked.post(
        f"{AP_API}/contacts",
        json={"contact_ids": ["person_A"], "email_contact_map": {"a@x.com": "person_A"}},
    )
    tier = backend.create_field(LIST_ID, "Loyalty Tier", FieldType.TEXT)
    age = DestinationField("integer--Age", "Age", FieldType.NUMBER)
    note = DestinationField("string--Note", "Note", FieldType.TEXT)
    backend.prepare(LIST_ID, [tier, age, note])
    batch = [
        Record("A@x.com", "Ann", "Lee", {tier.key: "gold", age.key: 42, note.key: None}),
        Record("b@x.com"),
    ]
    result = backend.push(LIST_ID, batch)
    assert result.accepted == 1
    assert [f.email for f in result.failures] == ["b@x.com"]
    sent = json.loads(mocked.calls[0].request.body)["contacts"]
    assert sent[0] == {
        "Email": "A@x.com",
        "FirstName": "Ann",
        "LastName": "Lee",
        "_autopilot_list": LIST_ID,
        "custom": {"string--Loyalty--Tier": "gold", "integer--Age": 42, "string--Note": None},
    }
    assert sent[1] == {"Email": "b@x.com", "_autopilot_list": LIST_ID}


def test_a_reply_with_only_contact_ids_means_every_contact_was_taken(mocked, backend):
    mocked.post(f"{AP_API}/contacts", json={"contact_ids": ["person_A", "person_B"]})
    result = backend.push(LIST_ID, [Record("a@x.com"), Record("b@x.com")])
    assert (result.accepted, result.failures) == (2, [])


def test_push_refuses_more_than_100_records(backend):
    with pytest.raises(ValueError):
        backend.push(LIST_ID, [Record(f"p{i}@x.com") for i in range(101)])


def test_verifying_a_rejected_key_says_so_in_words_a_person_can_act_on(mocked):
    mocked.get(
        f"{AP_API}/lists",
        json={"error": "Unauthorized", "message": "Provided autopilotapikey not valid."},
        status=401,
    )
    with pytest.raises(AuthRevoked, match=r"Autopilot rejected this API key\. Check it and try"):
        AutopilotBackend.verify({"api_key": "wrong"})


def test_verifying_when_autopilot_cannot_be_reached_says_so(mocked):
    mocked.get(f"{AP_API}/lists", body=requests.ConnectionError("refused"))
    with pytest.raises(Transient, match="Autopilot could not be reached: the connection failed"):
        AutopilotBackend.verify({"api_key": "k"})


def test_the_connection_test_has_named_steps(mocked, backend):
    mocked.get(f"{AP_API}/lists", json={"lists": [{"list_id": LIST_ID, "title": "News"}]})
    mocked.get(f"{AP_API}/list/{LIST_ID}/contacts", json={"contacts": [], "total_contacts": 0})
    steps = backend.test()
    assert [(s.name, s.status) for s in steps] == [
        ("API key accepted", StepStatus.PASSED),
        ("Lists readable", StepStatus.PASSED),
        ("List contacts readable", StepStatus.PASSED),
    ]


def test_an_unreachable_service_fails_the_first_step_with_a_clear_message(mocked, backend):
    mocked.get(f"{AP_API}/lists", body=requests.ConnectionError("refused"))
    steps = backend.test()
    assert steps[0].status == StepStatus.FAILED
    assert isinstance(steps[0].error, Transient)
    assert "Autopilot could not be reached" in steps[0].message


def test_a_push_into_a_list_that_is_gone_raises_list_not_found(mocked, backend):
    mocked.post(
        f"{AP_API}/contacts",
        json={"error": "Not Found", "message": "List could not be found."},
        status=404,
    )
    with pytest.raises(ListNotFound) as caught:
        backend.push(LIST_ID, [Record("a@x.com")])
    assert caught.value.list_id == LIST_ID


def test_a_removal_from_a_list_that_is_gone_stops_the_export(mocked, backend):
    mocked.get(f"{AP_API}/contact/a%40x.com", json={"Email": "a@x.com"})
    mocked.delete(f"{AP_API}/list/contactlist_gone/contact/a%40x.com", body="", status=404)
    with pytest.raises(ListNotFound):
        backend.remove("contactlist_gone", ["a@x.com"])
    assert len(mocked.calls) == 2


NOT_FOUND = {"error": "Not Found", "message": "Contact could not be found."}


@pytest.mark.parametrize(
    "contact",
    [
        {"Email": "out@x.com", "unsubscribed": True},
        {"Email": "out@x.com", "mail_hardbounced": {"batchdelivery_1": 1482221331000}},
        {"Email": "out@x.com", "mail_complained": {"batchdelivery_1": 1482221331000}},
    ],
    ids=["unsubscribed", "hard-bounced", "complained"],
)
def test_a_leaver_who_opted_out_is_reported_before_leaving_the_list(mocked, backend, contact):
    """The contact stays in the account; should it be deleted there later, the export must
    still know not to create it again when the person returns."""
    mocked.get(f"{AP_API}/contact/out%40x.com", json=contact)
    mocked.delete(f"{AP_API}/list/{LIST_ID}/contact/out%40x.com", body="")
    result = backend.remove(LIST_ID, ["out@x.com"])
    assert (result.accepted, result.failures, result.opted_out) == (1, [], ["out@x.com"])


def test_a_leaver_autopilot_does_not_know_is_removed_without_another_call(mocked, backend):
    mocked.get(f"{AP_API}/contact/gone%40x.com", json=NOT_FOUND, status=404)
    result = backend.remove(LIST_ID, ["gone@x.com"])
    assert (result.accepted, result.opted_out, len(mocked.calls)) == (1, [], 1)


def test_a_returning_contact_who_unsubscribed_is_not_sent_again(mocked, backend):
    mocked.get(f"{AP_API}/contact/out%40x.com", json={"Email": "out@x.com", "unsubscribed": True})
    mocked.get(f"{AP_API}/contact/new%40x.com", json=NOT_FOUND, status=404)
    mocked.post(
        f"{AP_API}/contacts",
        json={"contact_ids": ["person_N"], "email_contact_map": {"new@x.com": "person_N"}},
    )
    batch = [Record("out@x.com", returning=True), Record("new@x.com", returning=True)]
    result = backend.push(LIST_ID, batch)
    assert result.accepted == 1
    assert [(f.email, f.code) for f in result.failures] == [("out@x.com", "unsubscribed")]
    assert result.failures[0].code in backend.opted_out_codes
    sent = json.loads(mocked.calls[-1].request.body)["contacts"]
    assert [contact["Email"] for contact in sent] == ["new@x.com"]
