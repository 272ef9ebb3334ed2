"""The Campaign Monitor client against the contract's bodies (campaign_monitor_api.md)."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from config.translation import shown
from connections.models import Connection
from connections.services import DatabaseCredentialStore
from connections.types.base import (
    AuthExpired,
    AuthRevoked,
    ListNotFound,
    MemoryCredentialStore,
    Permanent,
    RateLimited,
    Transient,
)
from connections.types.campaign_monitor.client import CampaignMonitorClient
from tests.connections.conftest import CM_API, CM_OAUTH, CM_TOKEN
from tests.connections.factories import (
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    ConnectionFactory,
    campaign_monitor_credentials,
)

LIST_ID = "a58ee1d3039b8bec838e6d1482a8a965"
IMPORT_URL = f"{CM_API}/subscribers/{LIST_ID}/import.json"
EXPIRED = {"Code": 121, "Message": "Expired OAuth Token"}
REVOKED = {"Code": 122, "Message": "Revoked OAuth Token"}
NEW_TOKENS = {"access_token": "new-access", "expires_in": 1209600, "refresh_token": "new-refresh"}
PARTIAL = {
    "ResultData": {
        "TotalUniqueEmailsSubmitted": 3,
        "TotalExistingSubscribers": 2,
        "TotalNewSubscribers": 0,
        "DuplicateEmailsInSubmission": [],
        "FailureDetails": [
            {"EmailAddress": "example+1@example", "Code": 1, "Message": "Invalid Email Address"}
        ],
    },
    "Code": 210,
    "Message": "Subscriber Import had some failures",
}


def subscribers(*emails):
    return [{"EmailAddress": email, "Name": "", "ConsentToTrack": "Unchanged"} for email in emails]


@pytest.fixture
def store():
    return MemoryCredentialStore(campaign_monitor_credentials())


@pytest.fixture
def client(store):
    return CampaignMonitorClient(store)


def test_it_reads_clients_and_their_lists_with_a_bearer_token(mocked, client):
    mocked.get(f"{CM_API}/clients.json", json=[{"ClientID": "4a39", "Name": "Client One"}])
    mocked.get(f"{CM_API}/clients/4a39/lists.json", json=[{"ListID": LIST_ID, "Name": "List One"}])
    assert client.clients() == [{"ClientID": "4a39", "Name": "Client One"}]
    assert client.lists("4a39")[0]["ListID"] == LIST_ID
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_it_imports_subscribers_in_the_contract_shape(mocked, client):
    reply = {
        "FailureDetails": [],
        "TotalUniqueEmailsSubmitted": 2,
        "TotalExistingSubscribers": 0,
        "TotalNewSubscribers": 2,
        "DuplicateEmailsInSubmission": [],
    }
    mocked.post(IMPORT_URL, json=reply, status=201)
    result = client.import_subscribers(LIST_ID, subscribers("a@x.com", "b@x.com"))
    body = json.loads(mocked.calls[0].request.body)
    assert body["Subscribers"][0] == {
        "EmailAddress": "a@x.com",
        "Name": "",
        "ConsentToTrack": "Unchanged",
    }
    assert body["Resubscribe"] is False
    assert body["QueueSubscriptionBasedAutoResponders"] is False
    assert body["RestartSubscriptionBasedAutoresponders"] is False
    assert (result.submitted, result.new, result.failures) == (2, 2, [])


def test_a_code_210_reply_becomes_per_record_failures(mocked, client):
    mocked.post(IMPORT_URL, json=PARTIAL, status=400)
    result = client.import_subscribers(
        LIST_ID, subscribers("a@example.com", "b@example.com", "example+1@example")
    )
    assert [(f.email, f.code, f.message) for f in result.failures] == [
        ("example+1@example", "1", "Invalid Email Address")
    ]
    assert result.existing == 2


def test_it_reads_reply_keys_whatever_their_case(mocked, client):
    partial = {
        "resultdata": {"failuredetails": [{"emailaddress": "x@y", "code": 1, "message": "Bad"}]},
        "code": 210,
        "message": "Subscriber Import had some failures",
    }
    mocked.post(IMPORT_URL, json=partial, status=400)
    result = client.import_subscribers(LIST_ID, subscribers("x@y"))
    assert result.failures[0].email == "x@y"


def test_other_400_replies_are_permanent_errors_with_the_services_reason(mocked, client):
    mocked.post(IMPORT_URL, json={"Code": 215, "Message": "Invalid ConsentToTrack"}, status=400)
    with pytest.raises(Permanent, match="Invalid ConsentToTrack") as caught:
        client.import_subscribers(LIST_ID, subscribers("a@x.com"))
    assert caught.value.code == 215


def test_it_refuses_more_than_1000_subscribers_without_calling_the_service(mocked, client):
    with pytest.raises(ValueError, match="1000"):
        client.import_subscribers(LIST_ID, subscribers(*[f"p{i}@x.com" for i in range(1001)]))
    assert not mocked.calls


def test_an_empty_import_is_not_sent(mocked, client):
    assert client.import_subscribers(LIST_ID, []).submitted == 0
    assert not mocked.calls


def test_an_expired_token_is_refreshed_and_the_call_retried_once(mocked, client, store):
    mocked.get(f"{CM_API}/clients.json", json=EXPIRED, status=401)
    mocked.post(CM_TOKEN, json=NEW_TOKENS)
    mocked.get(f"{CM_API}/clients.json", json=[])
    assert client.clients() == []
    refresh = parse_qs(mocked.calls[1].request.body)
    assert refresh == {"grant_type": ["refresh_token"], "refresh_token": [REFRESH_TOKEN]}
    assert mocked.calls[2].request.headers["Authorization"] == "Bearer new-access"
    assert store.credentials["refresh_token"] == "new-refresh"


def test_a_token_that_stays_expired_after_one_refresh_raises_auth_expired(mocked, client):
    mocked.get(f"{CM_API}/clients.json", json=EXPIRED, status=401)
    mocked.post(CM_TOKEN, json=NEW_TOKENS)
    with pytest.raises(AuthExpired):
        client.clients()
    assert [call.request.url.split("?")[0] for call in mocked.calls] == [
        f"{CM_API}/clients.json",
        CM_TOKEN,
        f"{CM_API}/clients.json",
    ]


def test_a_token_is_refreshed_ahead_of_its_expiry(mocked, store):
    store.credentials["expires_at"] = time.time() + 30
    mocked.post(CM_TOKEN, json=NEW_TOKENS)
    mocked.get(f"{CM_API}/clients.json", json=[])
    CampaignMonitorClient(store).clients()
    assert mocked.calls[0].request.url == CM_TOKEN
    assert mocked.calls[1].request.headers["Authorization"] == "Bearer new-access"


@pytest.mark.django_db
def test_a_revoked_token_marks_the_connection_as_needing_re_authentication(mocked):
    connection = ConnectionFactory(campaign_monitor=True)
    mocked.get(f"{CM_API}/clients.json", json=REVOKED, status=401)
    with pytest.raises(AuthRevoked) as caught:
        CampaignMonitorClient(DatabaseCredentialStore(connection.pk)).clients()
    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_REAUTHENTICATION
    assert "Authenticate with Campaign Monitor" in shown(connection.last_error)
    assert ACCESS_TOKEN not in caught.value.message and REFRESH_TOKEN not in caught.value.message
    assert not any(call.request.url == CM_TOKEN for call in mocked.calls)


@pytest.mark.django_db
def test_a_failed_refresh_marks_the_connection_as_needing_re_authentication(mocked):
    connection = ConnectionFactory(campaign_monitor=True)
    mocked.get(f"{CM_API}/clients.json", json=EXPIRED, status=401)
    mocked.post(
        CM_TOKEN,
        json={
            "error": "invalid_grant",
            "error_description": "Specified code was invalid or expired",
        },
        status=400,
    )
    with pytest.raises(AuthRevoked):
        CampaignMonitorClient(DatabaseCredentialStore(connection.pk)).clients()
    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_REAUTHENTICATION
    assert REFRESH_TOKEN not in shown(connection.last_error)


@pytest.mark.django_db
def test_refreshed_tokens_are_saved_encrypted_on_the_connection(mocked):
    connection = ConnectionFactory(campaign_monitor=True)
    mocked.get(f"{CM_API}/clients.json", json=EXPIRED, status=401)
    mocked.post(CM_TOKEN, json=NEW_TOKENS)
    mocked.get(f"{CM_API}/clients.json", json=[])
    CampaignMonitorClient(DatabaseCredentialStore(connection.pk)).clients()
    stored = DatabaseCredentialStore(connection.pk).load()
    assert (stored["access_token"], stored["refresh_token"]) == ("new-access", "new-refresh")
    connection.refresh_from_db()
    assert "new-refresh" not in connection.encrypted_credentials


@pytest.mark.django_db
def test_a_worker_that_waited_for_the_lock_uses_the_tokens_another_worker_saved(mocked):
    """Worker A still holds the old access token; worker B has already refreshed (and the
    service rotated the refresh token). A must not spend the old refresh token again."""
    connection = ConnectionFactory(campaign_monitor=True)
    worker_a = CampaignMonitorClient(DatabaseCredentialStore(connection.pk))
    old = DatabaseCredentialStore(connection.pk).load()
    DatabaseCredentialStore(connection.pk).update(
        lambda current: {**current, **campaign_monitor_credentials(access_token="b-access")}
    )
    refreshed = worker_a._refresh(stale_access_token=old["access_token"])
    assert refreshed["access_token"] == "b-access"
    assert not mocked.calls


def test_a_rate_limit_with_a_reset_header_says_how_long_to_wait(mocked, client):
    mocked.get(
        f"{CM_API}/clients.json",
        json={"Code": 429, "Message": "Rate limit exceeded"},
        status=429,
        headers={
            "X-RateLimit-Limit": "60",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "348",
        },
    )
    with pytest.raises(RateLimited) as caught:
        client.clients()
    assert (caught.value.wait, caught.value.hinted) == (348, True)


def test_a_rate_limit_without_headers_gets_a_default_wait_to_back_off_from(mocked, client):
    mocked.post(
        IMPORT_URL,
        json={
            "Code": 429,
            "Message": "Subscriber was added too many times too quickly, try again later.",
        },
        status=429,
    )
    with pytest.raises(RateLimited) as caught:
        client.import_subscribers(LIST_ID, subscribers("a@x.com"))
    assert caught.value.wait > 0 and caught.value.hinted is False


@pytest.mark.parametrize(
    "failure",
    [
        {"json": {"Code": 500, "Message": "Internal Server Error"}, "status": 500},
        {"body": requests.ConnectTimeout("timed out")},
        {"body": requests.ConnectionError("reset")},
    ],
)
def test_server_errors_and_transport_failures_are_transient(mocked, client, failure):
    mocked.get(f"{CM_API}/clients.json", **failure)
    with pytest.raises(Transient) as caught:
        client.clients()
    assert ACCESS_TOKEN not in caught.value.message


def test_the_authorize_url_asks_for_the_scopes_as_a_web_server_app(client):
    url = client.authorize_url(redirect_uri="https://relay.test/cb/", state="s1")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CM_OAUTH
    assert parse_qs(parts.query) == {
        "type": ["web_server"],
        "client_id": ["relay-client-id"],
        "redirect_uri": ["https://relay.test/cb/"],
        "scope": ["ManageLists,ImportSubscribers,ViewReports"],
        "state": ["s1"],
    }


def test_the_authorize_url_is_refused_when_no_oauth_application_is_configured(settings):
    settings.CAMPAIGN_MONITOR_CLIENT_ID = ""
    with pytest.raises(Permanent, match="CAMPAIGN_MONITOR_CLIENT_ID"):
        CampaignMonitorClient().authorize_url(redirect_uri="https://relay.test/cb/", state="s")


def test_it_exchanges_a_code_for_tokens_with_a_form_body(mocked):
    mocked.post(
        CM_TOKEN,
        json={"access_token": "SlAV32hkKG", "expires_in": 1209600, "refresh_token": "tGzv3J"},
    )
    credentials = CampaignMonitorClient().exchange_code(code="c0de", redirect_uri="https://r/cb/")
    request = mocked.calls[0].request
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body) == {
        "grant_type": ["authorization_code"],
        "client_id": ["relay-client-id"],
        "client_secret": ["relay-client-secret"],
        "redirect_uri": ["https://r/cb/"],
        "code": ["c0de"],
    }
    assert credentials["access_token"] == "SlAV32hkKG"
    assert credentials["expires_at"] == pytest.approx(time.time() + 1209600, abs=5)


def test_a_failed_exchange_is_a_permanent_error_that_says_why(mocked):
    mocked.post(
        CM_TOKEN,
        json={
            "error": "invalid_grant",
            "error_description": "Specified code was invalid or expired",
        },
        status=400,
    )
    with pytest.raises(Permanent, match="Specified code was invalid or expired"):
        CampaignMonitorClient().exchange_code(code="bad", redirect_uri="https://r/cb/")


def test_it_deletes_a_subscriber_by_email(mocked, client):
    mocked.delete(f"{CM_API}/subscribers/{LIST_ID}.json", status=200)
    client.delete_subscriber(LIST_ID, "x@y.com")
    assert mocked.calls[0].request.url.endswith(f"/subscribers/{LIST_ID}.json?email=x%40y.com")


def test_it_reads_and_creates_custom_fields(mocked, client):
    url = f"{CM_API}/lists/{LIST_ID}/customfields.json"
    mocked.get(
        url,
        json=[
            {
                "FieldName": "website",
                "Key": "[website]",
                "DataType": "Text",
                "FieldOptions": [],
                "VisibleInPreferenceCenter": True,
            }
        ],
    )
    mocked.post(url, json="[newdatefield]", status=201)
    assert client.custom_fields(LIST_ID)[0]["Key"] == "[website]"
    assert (
        client.create_custom_field(LIST_ID, "new date field", data_type="Date") == "[newdatefield]"
    )
    assert json.loads(mocked.calls[1].request.body) == {
        "FieldName": "new date field",
        "DataType": "Date",
        "Options": [],
        "VisibleInPreferenceCenter": True,
    }


def test_it_reads_list_details(mocked, client):
    mocked.get(f"{CM_API}/lists/{LIST_ID}.json", json={"ListID": LIST_ID, "Title": "List One"})
    assert client.list_details(LIST_ID)["Title"] == "List One"


def test_a_server_error_says_how_long_the_service_asked_us_to_wait(mocked, client):
    mocked.get(f"{CM_API}/clients.json", status=503, headers={"Retry-After": "7"})
    with pytest.raises(Transient) as caught:
        client.clients()
    assert caught.value.wait == 7.0


@pytest.mark.parametrize("status", [400, 401])
def test_a_list_deleted_at_the_service_is_a_list_not_found_that_names_it(mocked, client, status):
    mocked.post(IMPORT_URL, json={"Code": 101, "Message": "Invalid ListID"}, status=status)
    with pytest.raises(ListNotFound) as caught:
        client.import_subscribers(LIST_ID, subscribers("a@x.com"))
    assert caught.value.permanent and caught.value.list_id == LIST_ID
    assert str(caught.value) == (
        f"Campaign Monitor has no list with the ID {LIST_ID}: it may have been deleted there. "
        "Edit the export and choose another list."
    )
    assert client.store.auth_failures == []


@pytest.mark.parametrize(
    ("method", "url", "call"),
    [
        ("GET", f"{CM_API}/lists/{LIST_ID}/customfields.json", lambda c: c.custom_fields(LIST_ID)),
        ("GET", f"{CM_API}/lists/{LIST_ID}.json", lambda c: c.list_details(LIST_ID)),
        (
            "DELETE",
            f"{CM_API}/subscribers/{LIST_ID}.json",
            lambda c: c.delete_subscriber(LIST_ID, "a@x.com"),
        ),
    ],
)
def test_every_call_about_a_list_that_is_gone_says_so(mocked, client, method, url, call):
    mocked.add(method, url, json={"Code": 101, "Message": "Invalid ListID"}, status=400)
    with pytest.raises(ListNotFound):
        call(client)


def test_a_client_the_account_does_not_have_is_refused_without_blaming_the_credentials(
    mocked, client
):
    mocked.post(IMPORT_URL, json={"Code": 102, "Message": "Invalid ClientID"}, status=401)
    with pytest.raises(Permanent) as caught:
        client.import_subscribers(LIST_ID, subscribers("a@x.com"))
    assert not isinstance(caught.value, AuthRevoked | ListNotFound)
    assert "Invalid ClientID" in str(caught.value) and "Check the list ID" in str(caught.value)
    assert client.store.auth_failures == []
