"""Display names are unique per type (issue 23, item 11): the export form tells connections
apart by name and type."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.connections.factories import ConnectionFactory

pytestmark = pytest.mark.django_db
TAKEN = "Another connection of this type is called “Newsletter account”. Choose another name."


def setup_page(client, kind: str, name: str) -> str:
    return client.post(
        reverse("connections:setup", args=[kind]),
        {"display_name": name, "who_can_use": "administrators", "agree": "on"},
    ).content.decode()


def test_a_second_connection_of_a_type_cannot_take_a_name_it_has(client, alice):
    ConnectionFactory(kind="autopilot", display_name="Newsletter account")
    client.force_login(alice)
    page = setup_page(client, "autopilot", "newsletter ACCOUNT ")
    assert "Another connection of this type is called “newsletter ACCOUNT”." in page


def test_another_type_may_use_the_same_name(client, alice):
    ConnectionFactory(kind="autopilot", display_name="Newsletter account")
    client.force_login(alice)
    assert TAKEN not in setup_page(client, "campaign_monitor", "Newsletter account")


def test_a_connection_keeps_its_own_name_when_edited_but_not_anothers(client, alice):
    mine = ConnectionFactory(kind="autopilot", display_name="Mine")
    ConnectionFactory(kind="autopilot", display_name="Newsletter account")
    client.force_login(alice)
    edit = reverse("connections:edit", args=[mine.pk])
    same = client.post(edit, {"display_name": "Mine", "who_can_use": "administrators"})
    assert "Choose another name" not in same.content.decode()
    taken = client.post(
        edit, {"display_name": "Newsletter account", "who_can_use": "administrators"}
    )
    assert TAKEN in taken.content.decode()
