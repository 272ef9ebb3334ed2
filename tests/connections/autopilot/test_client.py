"""The Autopilot client against the contract's bodies (autopilot_api.md)."""

from __future__ import annotations

import json

import pytest
import requests

from config.translation import shown
from connections.models import Connection
from connections.services import DatabaseCredentialStore
from connections.types.autopilot.client import AutopilotClient, custom_key
from connections.types.base import (
    AuthRevoked,
    ListNotFound,
    MemoryCredentialStore,
    Permanent,
    RateLimited,
    Transient,
)
from tests.connections.conftest import AP_API
from tests.connections.factories import API_KEY, ConnectionFactory

LIST_ID = "contactlist_AAAA-1111"


@pytest.fixture
def client():
    return AutopilotClient(MemoryCredentialStore({"api_key": API_KEY}))


def test_it_sends_the_key_in_the_autopilotapikey_header(mocked, client):
    mocked.get(f"{AP_API}/lists", json={"lists": [{"list_id": LIST_ID, "title": "Newsletter"}]})
    assert client.lists() == [{"list_id": LIST_ID, "title": "Newsletter"}]
    headers = mocked.calls[0].request.headers
    assert headers["autopilotapikey"] == API_KEY
    assert "Authorization" not in headers


def test_it_creates_a_list_only_when_none_has_that_title(mocked, client):
    mocked.get(f"{AP_API}/lists", json={"lists": [{"list_id": LIST_ID, "title": "Newsletter"}]})
    mocked.post(f"{AP_API}/list", json={"list_id": "contactlist_NEW"})
    assert client.find_or_create_list("Newsletter") == LIST_ID
    assert client.find_or_create_list("VIP") == "contactlist_NEW"
    assert json.loads(mocked.calls[-1].request.body) == {"name": "VIP"}


def test_custom_field_keys_carry_the_type_and_turn_spaces_into_double_dashes():
    assert custom_key("string", "Test Field") == "string--Test--Field"
    assert custom_key("integer", " Age ") == "integer--Age"
    assert custom_key("boolean", "Has  the\tapp") == "boolean--Has--the--app"


def test_it_upserts_contacts_in_bulk(mocked, client):
    reply = {
        "contact_ids": ["person_A"],
        "email_contact_map": {"a@x.com": "person_A"},
        "_removeResultKeys": ["proposedContacts"],
    }
    mocked.post(f"{AP_API}/contacts", json=reply)
    contacts = [{"Email": "a@x.com", "_autopilot_list": LIST_ID}]
    assert client.upsert_contacts(contacts)["email_contact_map"] == {"a@x.com": "person_A"}
    assert json.loads(mocked.calls[0].request.body) == {"contacts": contacts}


def test_it_refuses_more_than_100_contacts_without_calling_the_service(mocked, client):
    with pytest.raises(ValueError, match="100"):
        client.upsert_contacts([{"Email": f"p{i}@x.com"} for i in range(101)])
    assert not mocked.calls


def test_it_pages_list_contacts_until_a_page_has_no_bookmark(mocked, client):
    mocked.get(
        f"{AP_API}/list/{LIST_ID}/contacts",
        json={"contacts": [{"Email": "a@x.com"}], "total_contacts": 2, "bookmark": "person_A"},
    )
    mocked.get(
        f"{AP_API}/list/{LIST_ID}/contacts/person_A",
        json={"contacts": [{"Email": "b@x.com"}], "total_contacts": 2},
    )
    assert [c["Email"] for c in client.list_contacts(LIST_ID)] == ["a@x.com", "b@x.com"]


def test_removing_a_contact_that_is_not_on_the_list_is_not_an_error(mocked, client):
    unknown = {"error": "Not Found", "message": "Contact could not be found."}
    mocked.delete(f"{AP_API}/list/{LIST_ID}/contact/a%40x.com", json={})
    mocked.delete(f"{AP_API}/list/{LIST_ID}/contact/b%40x.com", json=unknown, status=404)
    mocked.delete(f"{AP_API}/list/{LIST_ID}/contact/c%40x.com", json={"not_modified": True})
    assert client.remove_from_list(LIST_ID, "a@x.com") is True
    assert client.remove_from_list(LIST_ID, "b@x.com") is False
    assert client.remove_from_list(LIST_ID, "c@x.com") is True


@pytest.mark.parametrize(
    "answer",
    [
        {"body": "", "status": 404},  # how Autopilot answers for an unknown list
        {"json": {"error": "Not Found", "message": "List could not be found."}, "status": 404},
    ],
)
def test_removing_from_a_list_that_is_gone_is_an_error_not_a_removal(mocked, client, answer):
    mocked.delete(f"{AP_API}/list/{LIST_ID}/contact/a%40x.com", **answer)
    with pytest.raises(ListNotFound) as caught:
        client.remove_from_list(LIST_ID, "a@x.com")
    assert "no list with the ID contactlist_AAAA-1111" in str(caught.value)


@pytest.mark.parametrize(
    "answer",
    [
        {"body": "", "status": 404},
        {"json": {"error": "Not Found", "message": "List could not be found."}, "status": 404},
    ],
)
def test_an_upsert_into_a_list_that_is_gone_is_a_list_not_found(mocked, client, answer):
    mocked.post(f"{AP_API}/contacts", **answer)
    with pytest.raises(ListNotFound) as caught:
        client.upsert_contacts([{"Email": "a@x.com", "_autopilot_list": LIST_ID}], list_id=LIST_ID)
    assert caught.value.permanent and caught.value.list_id == LIST_ID
    assert str(caught.value) == (
        "Autopilot has no list with the ID contactlist_AAAA-1111: it may have been deleted "
        "there. Edit the export and choose another list."
    )
    assert client.store.auth_failures == []


def test_reading_a_list_that_is_gone_is_a_list_not_found(mocked, client):
    mocked.get(f"{AP_API}/list/{LIST_ID}/contacts", body="", status=404)
    with pytest.raises(ListNotFound):
        list(client.list_contacts(LIST_ID))


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            404,
            {"error": "Not Found", "message": "Contact could not be found."},
            "Contact could not",
        ),
        (
            405,
            {"code": "MethodNotAllowedError", "message": "PUT is not allowed"},
            "PUT is not allowed",
        ),
        (400, {"code": "BadRequestError"}, "BadRequestError"),
        (404, None, "HTTP 404"),
    ],
)
def test_both_error_body_shapes_and_empty_bodies_become_readable_errors(
    mocked, client, status, body, expected
):
    mocked.get(f"{AP_API}/lists", status=status, **({"json": body} if body else {"body": ""}))
    with pytest.raises(Permanent, match=expected):
        client.lists()


@pytest.mark.django_db
def test_a_rejected_key_marks_the_connection_as_needing_re_authentication(mocked):
    connection = ConnectionFactory()
    mocked.get(
        f"{AP_API}/lists",
        json={"error": "Unauthorized", "message": "Provided autopilotapikey not valid."},
        status=401,
    )
    with pytest.raises(AuthRevoked) as caught:
        AutopilotClient(DatabaseCredentialStore(connection.pk)).lists()
    assert API_KEY not in caught.value.message
    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_REAUTHENTICATION
    assert "enter a new API key" in shown(connection.last_error)


@pytest.mark.parametrize(
    ("headers", "wait", "hinted"), [({}, 1.0, False), ({"Retry-After": "3"}, 3.0, True)]
)
def test_429_means_back_off(mocked, client, headers, wait, hinted):
    mocked.post(
        f"{AP_API}/contacts",
        json={
            "error": "Too Many Requests",
            "message": "You have exceeded your request rate of 5 r/s.",
        },
        status=429,
        headers=headers,
    )
    with pytest.raises(RateLimited, match="5 r/s") as caught:
        client.upsert_contacts([{"Email": "a@x.com"}])
    assert (caught.value.wait, caught.value.hinted) == (wait, hinted)


@pytest.mark.parametrize(
    "failure",
    [
        {"json": {"error": "Internal Server Error", "message": "boom"}, "status": 500},
        {"body": requests.ReadTimeout("slow")},
        {"body": requests.ConnectionError("dropped")},
    ],
)
def test_server_errors_and_transport_failures_are_transient(mocked, client, failure):
    mocked.get(f"{AP_API}/lists", **failure)
    with pytest.raises(Transient) as caught:
        client.lists()
    assert API_KEY not in caught.value.message


def test_a_server_error_says_how_long_the_service_asked_us_to_wait(mocked, client):
    mocked.get(f"{AP_API}/lists", status=503, headers={"Retry-After": "7"})
    with pytest.raises(Transient) as caught:
        client.lists()
    assert caught.value.wait == 7.0
