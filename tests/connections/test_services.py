"""Connection services and selectors: roles, who may use what, tokens under a lock."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs

import pytest
from django.db import connection as db_connection

from config.translation import shown
from connections import selectors, services, signals
from connections.models import Connection
from connections.services import DatabaseCredentialStore
from connections.types.base import Transient
from connections.types.campaign_monitor.client import CampaignMonitorClient
from exports.models import Export
from tests.connections.conftest import CM_API, CM_TOKEN
from tests.connections.factories import (
    REFRESH_TOKEN,
    ConnectionFactory,
    campaign_monitor_credentials,
)


@pytest.mark.django_db
def test_roles_get_the_connection_permissions_of_the_product_spec(alice, bob, charlie):
    assert all(
        alice.has_perm(f"connections.{codename}")
        for codename in (
            "add_connection",
            "change_connection",
            "delete_connection",
            "view_connection",
            "use_connection",
        )
    )
    assert bob.has_perm("connections.use_connection")
    assert not bob.has_perm("connections.change_connection")
    assert not bob.has_perm("connections.view_connection")
    assert not any(perm.startswith("connections.") for perm in charlie.get_all_permissions())


@pytest.mark.django_db
def test_contributors_may_use_only_connections_shared_with_contributors(alice, bob, charlie):
    private = ConnectionFactory(display_name="Private")
    shared = ConnectionFactory(
        display_name="Shared", who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS
    )
    assert set(selectors.connections_usable_by(alice)) == {private, shared}
    usable = list(selectors.connections_usable_by(bob))
    assert usable == [shared]
    assert "encrypted_credentials" in usable[0].get_deferred_fields()
    assert not selectors.connections_usable_by(charlie).exists()


@pytest.mark.django_db
def test_a_backend_error_seen_by_an_export_marks_the_connection_failing():
    connection = ConnectionFactory()
    services.connection_record_error(
        connection_id=connection.pk, error=Transient("Autopilot had a server error.")
    )
    connection.refresh_from_db()
    assert connection.status == Connection.Status.FAILING
    assert shown(connection.last_error) == "Autopilot had a server error."


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("processes", ["one process", "two processes"])
def test_two_workers_refreshing_at_once_spend_the_rotating_refresh_token_only_once(
    mocked, monkeypatch, processes
):
    if processes == "two processes":
        # Workers in two processes share no lock of this process: only the row lock is left.
        monkeypatch.setattr(services, "_connection_lock", lambda connection_id: threading.Lock())
    connection = ConnectionFactory(
        campaign_monitor=True, credentials=campaign_monitor_credentials(expires_at=time.time() - 1)
    )
    spent = []

    def token_endpoint(request):
        refresh_token = parse_qs(request.body)["refresh_token"][0]
        if refresh_token in spent or refresh_token != REFRESH_TOKEN:
            return 400, {}, '{"error":"invalid_grant","error_description":"already used"}'
        spent.append(refresh_token)
        time.sleep(0.3)  # the other worker reaches the lock meanwhile
        return 200, {}, '{"access_token":"new","expires_in":1209600,"refresh_token":"rotated"}'

    mocked.add_callback("POST", CM_TOKEN, callback=token_endpoint)
    mocked.get(f"{CM_API}/clients.json", json=[])
    outcomes = []

    def worker():
        try:
            CampaignMonitorClient(DatabaseCredentialStore(connection.pk)).clients()
            outcomes.append("ok")
        except Exception as error:
            outcomes.append(repr(error))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["ok", "ok"]
    assert spent == [REFRESH_TOKEN]
    assert DatabaseCredentialStore(connection.pk).load()["refresh_token"] == "rotated"
    connection.refresh_from_db()
    assert connection.status == Connection.Status.HEALTHY


# What connections announce (connections.signals) ----------------------------------------------


@pytest.fixture
def received():
    """The re-authentication announcements, as the receivers get them."""
    calls = []

    def receiver(sender, connection_id, **kwargs):
        calls.append(connection_id)

    signals.connection_needs_reauthentication.connect(receiver, dispatch_uid="test.received")
    yield calls
    signals.connection_needs_reauthentication.disconnect(dispatch_uid="test.received")


@pytest.mark.django_db
def test_needing_re_authentication_is_announced_once_while_it_lasts(received):
    connection = ConnectionFactory()

    services.connection_record_auth_failure(connection_id=connection.pk, message="Revoked.")
    services.connection_record_auth_failure(connection_id=connection.pk, message="Revoked.")

    assert received == [connection.pk]


@pytest.mark.django_db
def test_a_receiver_that_fails_never_hides_the_authentication_error(caplog):
    connection = ConnectionFactory()

    def broken(sender, connection_id, **kwargs):
        raise RuntimeError("no SMTP server")

    signals.connection_needs_reauthentication.connect(broken, dispatch_uid="test.broken")
    try:
        services.connection_record_auth_failure(connection_id=connection.pk, message="Revoked.")
    finally:
        signals.connection_needs_reauthentication.disconnect(dispatch_uid="test.broken")

    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_REAUTHENTICATION
    assert shown(connection.last_error) == "Revoked."
    assert "no SMTP server" in caplog.text


@pytest.mark.django_db
def test_a_refused_removal_undoes_what_the_receivers_did_before_the_refusal():
    """A receiver that did not release what uses the connection leaves it in use: the removal
    is refused by the service itself, and what the receiver did is undone with it."""
    connection = ConnectionFactory(display_name="Journeys")
    Export.objects.create(display_name="Weekly newsletter", connection=connection, list_id="l1")
    seen = []

    def renames(sender, connection, dependants_action, **kwargs):
        Connection.objects.filter(pk=connection.pk).update(display_name="Half removed")
        seen.append(dependants_action)

    signals.connection_deleting.connect(renames, dispatch_uid="test.renames")
    try:
        with pytest.raises(services.ConnectionInUse) as refused:
            services.connection_delete(connection=connection, dependants_action="unknown")
    finally:
        signals.connection_deleting.disconnect(dispatch_uid="test.renames")

    assert seen == ["unknown"]
    assert [str(user) for user in refused.value.users] == ["Weekly newsletter"]
    assert Connection.objects.get(pk=connection.pk).display_name == "Journeys"


@pytest.mark.django_db
def test_without_a_choice_a_connection_in_use_is_refused_before_anything_is_announced():
    connection = ConnectionFactory(display_name="Journeys")
    Export.objects.create(display_name="Weekly newsletter", connection=connection, list_id="l1")
    announced = []
    signals.connection_deleting.connect(
        lambda sender, **kwargs: announced.append(kwargs), dispatch_uid="test.announced", weak=False
    )
    try:
        with pytest.raises(services.ConnectionInUse):
            services.connection_delete(connection=connection)
    finally:
        signals.connection_deleting.disconnect(dispatch_uid="test.announced")

    assert announced == []
    assert Connection.objects.filter(pk=connection.pk).exists()
