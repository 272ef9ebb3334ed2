"""Adding an Autopilot connection: the key is checked with Autopilot on Connect."""

from __future__ import annotations

import pytest
import requests
from django.urls import reverse

from connections.models import Connection
from connections.services import DatabaseCredentialStore
from tests.connections.conftest import AP_API
from tests.connections.factories import API_KEY, ConnectionFactory

pytestmark = pytest.mark.django_db

SETUP = reverse("connections:setup", args=["autopilot"])
FORM = {"display_name": "Journeys", "who_can_use": "administrators_and_contributors", "agree": "on"}
REJECTED = {"error": "Unauthorized", "message": "Provided autopilotapikey not valid."}


def test_a_good_key_is_checked_then_saved_encrypted(as_alice, alice, mocked):
    mocked.get(f"{AP_API}/lists", json={"lists": []})
    response = as_alice.post(SETUP, {**FORM, "api_key": API_KEY})
    assert response.status_code == 302
    assert mocked.calls[0].request.headers["autopilotapikey"] == API_KEY
    assert not Connection.objects.exists()

    page = as_alice.get(response.url)
    assert "Autopilot accepted the credentials." in page.content.decode()
    assert API_KEY not in page.content.decode()
    response = as_alice.post(response.url, {"save": "1"})
    connection = Connection.objects.get()
    assert connection.who_can_use == Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS
    assert not connection.export_users.exists()
    assert DatabaseCredentialStore(connection.pk).load() == {"api_key": API_KEY}
    assert API_KEY not in connection.encrypted_credentials


def test_a_wrong_key_gets_a_clear_message_and_nothing_is_kept(as_alice, mocked):
    mocked.get(f"{AP_API}/lists", json=REJECTED, status=401)
    response = as_alice.post(SETUP, {**FORM, "api_key": "wrong-key"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Autopilot rejected this API key. Check it and try again." in html
    assert "Traceback" not in html and "wrong-key" not in html
    assert not Connection.objects.exists()


def test_an_unreachable_autopilot_gets_a_clear_message(as_alice, mocked):
    mocked.get(f"{AP_API}/lists", body=requests.ConnectionError("refused"))
    response = as_alice.post(SETUP, {**FORM, "api_key": API_KEY})
    assert "Autopilot could not be reached: the connection failed." in response.content.decode()


def test_connect_requires_a_name_a_key_and_i_agree(as_alice, mocked):
    response = as_alice.post(SETUP, {"who_can_use": "administrators"})
    html = response.content.decode()
    assert "Enter a display name" in html
    assert "Enter the Autopilot API key." in html
    assert "Select I agree" in html
    assert not mocked.calls


def test_editing_keeps_the_stored_key_unless_a_new_one_is_typed(as_alice, alice, mocked):
    connection = ConnectionFactory()
    edit = reverse("connections:edit", args=[connection.pk])
    response = as_alice.post(
        edit, {"display_name": "Renamed", "who_can_use": "administrators", "api_key": ""}
    )
    assert response.status_code == 302 and not mocked.calls
    connection.refresh_from_db()
    assert connection.display_name == "Renamed"
    assert DatabaseCredentialStore(connection.pk).load() == {"api_key": API_KEY}

    mocked.get(f"{AP_API}/lists", json={"lists": []})
    as_alice.post(
        edit,
        {
            "display_name": "Renamed",
            "who_can_use": "administrators",
            "api_key": "new-key-123",
            "i_am_export_user": "on",
        },
    )
    assert DatabaseCredentialStore(connection.pk).load() == {"api_key": "new-key-123"}
    assert list(connection.export_users.all()) == [alice]


def test_a_rejected_new_key_is_not_stored(as_alice, mocked):
    connection = ConnectionFactory()
    mocked.get(f"{AP_API}/lists", json=REJECTED, status=401)
    response = as_alice.post(
        reverse("connections:edit", args=[connection.pk]),
        {"display_name": "X", "who_can_use": "administrators", "api_key": "bad"},
    )
    assert "Autopilot rejected this API key. Check it and try again." in response.content.decode()
    assert DatabaseCredentialStore(connection.pk).load() == {"api_key": API_KEY}
