"""Adding and re-authenticating a Campaign Monitor connection: the OAuth round trip."""

from __future__ import annotations

import time
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core import signing
from django.test import Client
from django.urls import reverse

from connections.models import Connection
from connections.oauth_state import MAX_AGE_SECONDS, SALT
from connections.services import DatabaseCredentialStore
from tests.connections.conftest import CM_OAUTH, CM_TOKEN
from tests.connections.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

TOKENS = {"access_token": "SlAV32hkKG", "expires_in": 1209600, "refresh_token": "tGzv3JOkF0XG5Qx2"}
CALLBACK = reverse("connections:oauth_callback")


def connect(client) -> str:
    """Fill in the first page and select Connect; returns the pending setup's page."""
    response = client.post(
        reverse("connections:setup", args=["campaign_monitor"]),
        {"display_name": "Newsletter", "who_can_use": "administrators", "agree": "on"},
    )
    assert response.status_code == 302, response.content[:500]
    return response.url


def authenticate(client, finish_url: str, *, add_me_as_export_user: bool = True) -> dict:
    """Select Authenticate with Campaign Monitor; returns the authorize URL's query."""
    target = "pending:" + finish_url.rstrip("/").rsplit("/", 1)[1]
    form = {"target": target, **({"add_me_as_export_user": "on"} if add_me_as_export_user else {})}
    response = client.post(reverse("connections:authorize"), form)
    assert response.status_code == 302
    parts = urlsplit(response.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CM_OAUTH
    return {key: values[0] for key, values in parse_qs(parts.query).items()}


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_a_good_state_stores_the_tokens_and_adds_a_healthy_connection_at_once(
    as_alice, alice, mocked
):
    """Granting access is the last step: the connection is saved then, with no Save to find."""
    finish = connect(as_alice)
    query = authenticate(as_alice, finish, add_me_as_export_user=True)
    assert query["redirect_uri"] == "http://testserver" + CALLBACK
    assert query["scope"] == "ManageLists,ImportSubscribers,ViewReports"
    assert query["type"] == "web_server"
    mocked.post(CM_TOKEN, json=TOKENS)

    response = as_alice.get(CALLBACK, {"code": "c0de", "state": query["state"]}, follow=True)
    assert response.redirect_chain[0][0] == reverse("connections:list")
    assert "Connection “Newsletter” added." in messages_of(response)
    assert parse_qs(mocked.calls[0].request.body)["redirect_uri"] == [query["redirect_uri"]]
    connection = Connection.objects.get()
    assert (connection.kind, connection.display_name, connection.status) == (
        "campaign_monitor",
        "Newsletter",
        Connection.Status.HEALTHY,
    )
    assert connection.consent_given_by == alice and connection.created_by == alice
    assert list(connection.export_users.all()) == [alice]
    assert DatabaseCredentialStore(connection.pk).load()["refresh_token"] == TOKENS["refresh_token"]
    assert as_alice.get(finish, follow=True).redirect_chain  # the setup is gone


def test_add_yourself_as_export_user_can_be_left_off_before_authenticating(as_alice, mocked):
    query = authenticate(as_alice, connect(as_alice), add_me_as_export_user=False)
    mocked.post(CM_TOKEN, json=TOKENS)
    as_alice.get(CALLBACK, {"code": "c0de", "state": query["state"]})
    assert not Connection.objects.get().export_users.exists()


def test_it_refuses_to_save_before_campaign_monitor_granted_access(as_alice):
    finish = connect(as_alice)
    response = as_alice.post(finish, {"save": "1"})
    assert response.status_code == 200
    assert (
        "Select “Authenticate with Campaign Monitor” and allow access" in response.content.decode()
    )
    assert not Connection.objects.exists()


def test_it_rejects_a_forged_state(as_alice, mocked):
    authenticate(as_alice, connect(as_alice))
    response = as_alice.get(CALLBACK, {"code": "c0de", "state": "forged:abc"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("connections:list")
    assert "could not be verified" in messages_of(response)[0]
    assert not mocked.calls and not Connection.objects.exists()


def test_it_rejects_a_replayed_state(as_alice, mocked):
    query = authenticate(as_alice, connect(as_alice))
    mocked.post(CM_TOKEN, json=TOKENS)
    as_alice.get(CALLBACK, {"code": "c0de", "state": query["state"]}, follow=True)
    response = as_alice.get(CALLBACK, {"code": "c0de", "state": query["state"]}, follow=True)
    assert "already used or belongs to another session" in messages_of(response)[0]
    assert len(mocked.calls) == 1


def test_it_rejects_a_state_issued_to_another_session(as_alice, alice, mocked):
    query = authenticate(as_alice, connect(as_alice))
    other = Client()
    other.force_login(alice)
    response = other.get(CALLBACK, {"code": "c0de", "state": query["state"]}, follow=True)
    assert "already used or belongs to another session" in messages_of(response)[0]
    assert not mocked.calls


def test_it_rejects_an_expired_state(as_alice, mocked):
    query = authenticate(as_alice, connect(as_alice))
    later = time.time() + MAX_AGE_SECONDS + 60
    with mock.patch("django.core.signing.time.time", return_value=later):
        response = as_alice.get(CALLBACK, {"code": "c0de", "state": query["state"]}, follow=True)
    assert "expired" in messages_of(response)[0]
    assert not mocked.calls and not Connection.objects.exists()


def test_a_denied_consent_says_so_and_leaves_nothing_behind(as_alice, mocked):
    finish = connect(as_alice)
    query = authenticate(as_alice, finish)
    response = as_alice.get(
        CALLBACK,
        {"error": "access_denied", "error_description": "The user denied", "state": query["state"]},
        follow=True,
    )
    assert response.redirect_chain[0][0] == finish
    assert "Campaign Monitor access was denied, so nothing was saved." in messages_of(response)[0]
    assert not mocked.calls and not Connection.objects.exists()


def test_a_failed_code_exchange_says_why_and_leaves_nothing_behind(as_alice, mocked):
    finish = connect(as_alice)
    query = authenticate(as_alice, finish)
    mocked.post(
        CM_TOKEN,
        json={
            "error": "invalid_grant",
            "error_description": "Specified code was invalid or expired",
        },
        status=400,
    )
    response = as_alice.get(CALLBACK, {"code": "old", "state": query["state"]}, follow=True)
    assert response.redirect_chain[0][0] == finish
    text = messages_of(response)[0]
    assert "did not accept the sign-in (Specified code was invalid or expired)" in text
    assert not Connection.objects.exists()
    assert "Authenticate with Campaign Monitor" in response.content.decode()


def test_an_unreachable_token_endpoint_gets_a_clear_message(as_alice, mocked):
    query = authenticate(as_alice, connect(as_alice))
    mocked.post(CM_TOKEN, body=requests.ConnectTimeout())
    response = as_alice.get(CALLBACK, {"code": "c", "state": query["state"]}, follow=True)
    assert (
        "Campaign Monitor could not be reached: the request timed out." in messages_of(response)[0]
    )


@pytest.mark.parametrize(
    "params",
    [
        {"state": "x", "next": "https://evil.example/"},
        {"error": "access_denied", "state": "x"},
        {},
    ],
)
def test_the_callback_never_redirects_off_site(as_alice, params):
    response = as_alice.get(CALLBACK, params)
    assert response.status_code == 302
    assert response.url.startswith("/")


def test_re_authenticating_replaces_the_tokens_and_makes_the_connection_healthy(as_alice, mocked):
    connection = ConnectionFactory(
        campaign_monitor=True, status=Connection.Status.NEEDS_REAUTHENTICATION, last_error="revoked"
    )
    response = as_alice.post(
        reverse("connections:authorize"), {"target": f"connection:{connection.pk}"}
    )
    state = parse_qs(urlsplit(response.url).query)["state"][0]
    mocked.post(CM_TOKEN, json=TOKENS)
    response = as_alice.get(CALLBACK, {"code": "c0de", "state": state})
    assert response.url == reverse("connections:edit", args=[connection.pk])
    connection.refresh_from_db()
    assert (connection.status, connection.last_error) == (Connection.Status.HEALTHY, "")
    assert DatabaseCredentialStore(connection.pk).load()["access_token"] == TOKENS["access_token"]


def test_a_state_for_one_connection_cannot_be_used_for_another(as_alice, mocked):
    """The target is inside the signed state and must match the session's record of it."""
    first, second = (
        ConnectionFactory(campaign_monitor=True),
        ConnectionFactory(campaign_monitor=True),
    )
    response = as_alice.post(reverse("connections:authorize"), {"target": f"connection:{first.pk}"})
    state = parse_qs(urlsplit(response.url).query)["state"][0]
    payload = signing.loads(state, salt=SALT)
    tampered = signing.dumps({"n": payload["n"], "t": f"connection:{second.pk}"}, salt="other")
    response = as_alice.get(CALLBACK, {"code": "c", "state": tampered}, follow=True)
    assert "could not be verified" in messages_of(response)[0]
    assert not mocked.calls


def test_campaign_monitor_without_an_oauth_application_gets_a_clear_message(as_alice, settings):
    settings.CAMPAIGN_MONITOR_CLIENT_ID = ""
    finish = connect(as_alice)
    target = "pending:" + finish.rstrip("/").rsplit("/", 1)[1]
    response = as_alice.post(reverse("connections:authorize"), {"target": target}, follow=True)
    assert "set CAMPAIGN_MONITOR_CLIENT_ID" in messages_of(response)[0]
