"""The export form's questions about a list, asked of the account behind the connection."""

from __future__ import annotations

import pytest

from connections.types.base import Backend, DestinationList, Permanent
from exports import destinations
from exports.destinations import ListCheck
from exports.models import Export
from tests.connections.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


class Lists(Backend):
    """A backend that answers only "which lists are there", or fails with ``error``."""

    error: Exception | None = None

    def list_destinations(self):
        if self.error:
            raise self.error
        return [DestinationList(id="list-1", name="Subscribers")]


@pytest.fixture
def lists(monkeypatch):
    fake = Lists(store=None)
    monkeypatch.setattr("connections.services.backend_for", lambda connection: fake)
    return fake


@pytest.fixture
def connection():
    return ConnectionFactory(campaign_monitor=True)


def test_a_list_of_the_account_is_found_with_its_name(lists, connection):
    check = destinations.destination_list_check(connection, "list-1")
    assert check == ListCheck(destinations.FOUND, name="Subscribers")


def test_a_list_the_account_does_not_have_is_not_found(lists, connection):
    check = destinations.destination_list_check(connection, "list-9")
    assert check == ListCheck(destinations.NOT_FOUND)


def test_when_the_service_refuses_to_list_the_check_says_why_and_keeps_the_saved_name(
    lists, connection
):
    lists.error = Permanent("Campaign Monitor could not be reached.")
    saved = Export(connection=connection, list_id="list-7", list_name="Customers")

    same_list = destinations.destination_list_check(connection, "list-7", saved=saved)
    other_list = destinations.destination_list_check(connection, "list-8", saved=saved)

    reason = "Campaign Monitor could not be reached."
    assert same_list == ListCheck(destinations.UNCHECKED, name="Customers", reason=reason)
    assert other_list == ListCheck(destinations.UNCHECKED, name="", reason=reason)


def test_an_unexpected_fault_is_logged_and_never_shown(lists, connection, caplog):
    lists.error = RuntimeError("boom")

    check = destinations.destination_list_check(connection, "list-1")

    assert check == ListCheck(
        destinations.UNCHECKED, reason="The service did not answer as expected."
    )
    assert "Listing the lists of connection" in caplog.text


def test_a_new_list_is_named_only_without_a_list_id_and_for_a_type_that_creates_lists(
    connection,
):
    autopilot = ConnectionFactory()
    assert destinations.new_list_check(autopilot, "") == ""
    assert destinations.new_list_check(autopilot, "list-1") == destinations.BOTH_GIVEN
    assert destinations.new_list_check(connection, "") == destinations.NOT_CREATABLE
    assert destinations.new_list_check(None, "") == ""
