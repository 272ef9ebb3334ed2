"""Admin > Connections: who may open the pages, what they show, and what they never show."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.translation import shown
from connections.models import Connection
from exports.models import Export
from tests.connections.conftest import AP_API, CM_API
from tests.connections.factories import ACCESS_TOKEN, API_KEY, REFRESH_TOKEN, ConnectionFactory

pytestmark = pytest.mark.django_db

SECRETS = [API_KEY, ACCESS_TOKEN, REFRESH_TOKEN]


@pytest.fixture
def autopilot():
    return ConnectionFactory(display_name="Journeys")


@pytest.fixture
def campaign_monitor():
    return ConnectionFactory(campaign_monitor=True, display_name="Newsletter")


def pages(autopilot, campaign_monitor) -> list[tuple[str, str]]:
    """Every connections page a GET can open: (url, method)."""
    urls = [
        (reverse("connections:list"), "get"),
        (reverse("connections:choose_type"), "get"),
        (reverse("connections:setup", args=["autopilot"]), "get"),
        (reverse("connections:setup", args=["campaign_monitor"]), "get"),
    ]
    for connection in (autopilot, campaign_monitor):
        urls += [
            (reverse("connections:edit", args=[connection.pk]), "get"),
            (reverse("connections:delete", args=[connection.pk]), "get"),
            (reverse("connections:test", args=[connection.pk]), "post"),
        ]
    return urls


def mock_both_services(mocked):
    mocked.get(f"{AP_API}/lists", json={"lists": [{"list_id": "contactlist_1", "title": "News"}]})
    mocked.get(f"{AP_API}/list/contactlist_1/contacts", json={"contacts": []})
    mocked.get(f"{CM_API}/clients.json", json=[{"ClientID": "c1", "Name": "Shop"}])
    mocked.get(f"{CM_API}/clients/c1/lists.json", json=[{"ListID": "l1", "Name": "News"}])
    mocked.get(f"{CM_API}/lists/l1.json", json={"ListID": "l1", "Title": "News"})
    mocked.get(f"{CM_API}/lists/l1/customfields.json", json=[])


def test_the_list_shows_each_connection_with_its_type_audience_and_status(as_alice, autopilot):
    ConnectionFactory(
        campaign_monitor=True,
        display_name="Newsletter",
        status=Connection.Status.NEEDS_REAUTHENTICATION,
    )
    html = as_alice.get(reverse("connections:list")).content.decode()
    for text in (
        "Display name",
        "Type",
        "Who can use",
        "Created",
        "Status",
        "Journeys",
        "Newsletter",
        "Autopilot",
        "Campaign Monitor",
        "Administrators",
        "Needs re-authentication",
        "Healthy",
        "Add connection",
        "Edit",
        "Remove",
        "img/connections/autopilot.svg",
    ):
        assert text in html, text


def test_administrators_see_connections_in_the_admin_menu(as_alice):
    html = as_alice.get(reverse("segments:list")).content.decode()
    assert "Admin" in html and reverse("connections:list") in html


@pytest.mark.parametrize("username", ["bob", "charlie"])
def test_contributors_and_viewers_cannot_open_any_connections_page(
    client, request, username, autopilot, campaign_monitor
):
    client.force_login(request.getfixturevalue(username))
    assert reverse("connections:list") not in client.get(reverse("segments:list")).content.decode()
    for url, method in pages(autopilot, campaign_monitor):
        response = getattr(client, method)(url)
        assert response.status_code == 403, url
        html = response.content.decode()
        assert "Only administrators can see and change connections." in html
        assert "Journeys" not in html and all(secret not in html for secret in SECRETS)


@pytest.mark.parametrize("username", ["bob", "charlie"])
def test_contributors_and_viewers_cannot_change_settings(client, request, username, autopilot):
    client.force_login(request.getfixturevalue(username))
    edit = reverse("connections:edit", args=[autopilot.pk])
    response = client.post(edit, {"display_name": "Taken", "who_can_use": "administrators"})
    assert response.status_code == 403
    response = client.post(reverse("connections:delete", args=[autopilot.pk]))
    assert response.status_code == 403
    autopilot.refresh_from_db()
    assert autopilot.display_name == "Journeys"


def test_secrets_never_appear_in_any_connections_page(
    as_alice, autopilot, campaign_monitor, mocked
):
    mock_both_services(mocked)
    for url, method in pages(autopilot, campaign_monitor):
        response = getattr(as_alice, method)(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for secret in SECRETS:
            assert secret not in html, (url, secret)
        assert autopilot.encrypted_credentials not in html


def test_the_connection_test_shows_named_steps_and_records_the_status(
    as_alice, campaign_monitor, mocked
):
    mock_both_services(mocked)
    response = as_alice.post(reverse("connections:test", args=[campaign_monitor.pk]))
    html = response.content.decode()
    for text in ("Credentials accepted", "Lists readable", "List settings readable", "Passed"):
        assert text in html
    campaign_monitor.refresh_from_db()
    assert campaign_monitor.last_checked_at is not None


def test_a_failing_connection_test_says_what_to_do(as_alice, autopilot, mocked):
    mocked.get(
        f"{AP_API}/lists",
        json={"error": "Unauthorized", "message": "Provided autopilotapikey not valid."},
        status=401,
    )
    html = as_alice.post(reverse("connections:test", args=[autopilot.pk])).content.decode()
    assert "Failed" in html and "Skipped" in html
    assert "Edit the connection and enter a new API key." in html
    autopilot.refresh_from_db()
    assert autopilot.status == Connection.Status.NEEDS_REAUTHENTICATION


def test_an_unreachable_service_makes_the_connection_failing(as_alice, autopilot, mocked):
    mocked.get(
        f"{AP_API}/lists", json={"error": "Internal Server Error", "message": "x"}, status=500
    )
    as_alice.post(reverse("connections:test", args=[autopilot.pk]))
    autopilot.refresh_from_db()
    assert autopilot.status == Connection.Status.FAILING
    assert "server error" in shown(autopilot.last_error)


def test_removing_asks_for_confirmation_then_removes(as_alice, autopilot):
    url = reverse("connections:delete", args=[autopilot.pk])
    html = as_alice.get(url).content.decode()
    assert "Remove connection “Journeys”?" in html
    assert Connection.objects.filter(pk=autopilot.pk).exists()
    response = as_alice.post(url)
    assert response.status_code == 302
    assert not Connection.objects.filter(pk=autopilot.pk).exists()


def test_removal_is_refused_while_exports_use_the_connection(as_alice, autopilot):
    """Without a choice for the exports that use it, the connection stays
    (``tests/exports/test_views.py`` removes a connection with a choice)."""
    Export.objects.create(display_name="Weekly newsletter", connection=autopilot, list_id="l1")

    response = as_alice.post(reverse("connections:delete", args=[autopilot.pk]))

    html = response.content.decode()
    assert "Weekly newsletter" in html and "not removed" in html
    assert Connection.objects.filter(pk=autopilot.pk).exists()


def test_an_unknown_type_is_not_found(as_alice):
    assert as_alice.get(reverse("connections:setup", args=["sendgrid"])).status_code == 404


def test_the_setup_page_shows_the_privacy_text_and_who_can_use_defaults_to_administrators(as_alice):
    html = as_alice.get(reverse("connections:setup", args=["autopilot"])).content.decode()
    assert "Data privacy and compliance" in html
    assert "leaves Audience Relay" in html and "You are responsible" in html
    assert 'value="administrators" required id="id_who_can_use_0" checked' in html or (
        'value="administrators"' in html and "checked" in html
    )
    assert "Autopilot API key" in html and "I agree" in html and "Connect" in html


def test_a_connection_shows_its_last_error_only_while_it_is_not_healthy(as_alice, autopilot):
    autopilot.last_error = "The key was refused."
    autopilot.save()
    urls = (reverse("connections:list"), reverse("connections:edit", args=[autopilot.pk]))
    for url in urls:
        assert "The key was refused." not in as_alice.get(url).content.decode()

    autopilot.status = Connection.Status.FAILING
    autopilot.save()
    for url in urls:
        assert "The key was refused." in as_alice.get(url).content.decode()


def test_re_authentication_is_the_main_action_of_a_connection_that_needs_it(
    as_alice, campaign_monitor
):
    edit = reverse("connections:edit", args=[campaign_monitor.pk])
    re_authenticate = 'class="button primary">Authenticate with Campaign Monitor<'
    assert re_authenticate not in as_alice.get(edit).content.decode()

    campaign_monitor.status = Connection.Status.NEEDS_REAUTHENTICATION
    campaign_monitor.save()
    assert re_authenticate in as_alice.get(edit).content.decode()
