"""Guidance that fits the reader's role (issue 23, item 5)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import TestCase
from django.urls import reverse

from connections import services as connection_services
from connections.models import Connection

pytestmark = pytest.mark.django_db
ASK = "Only an administrator can fix the connection: ask alice."


def test_a_contributor_is_told_who_can_fix_a_connection_an_administrator_gets_the_link(
    client, alice, bob, make_export, everyone, connection
):
    export = make_export(everyone)
    Connection.objects.filter(pk=connection.pk).update(
        status=Connection.Status.NEEDS_REAUTHENTICATION
    )
    page = reverse("exports:detail", args=[export.pk])
    edit = reverse("connections:edit", args=[connection.pk])

    client.force_login(bob)
    as_contributor = client.get(page).content.decode()
    assert ASK in as_contributor and edit not in as_contributor

    client.force_login(alice)
    as_administrator = client.get(page).content.decode()
    assert edit in as_administrator and ASK not in as_administrator


def test_export_users_are_told_when_their_connection_needs_re_authentication(
    connection, carol_with_email
):
    connection.export_users.add(carol_with_email)
    with TestCase.captureOnCommitCallbacks(execute=True):
        connection_services.connection_record_auth_failure(
            connection_id=connection.pk, message="The API key was revoked."
        )
    [message] = mail.outbox
    assert "carol@example.com" in message.to


@pytest.fixture
def carol_with_email(django_user_model):
    return django_user_model.objects.create_user("carol", email="carol@example.com")
