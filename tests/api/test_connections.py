"""Connections through the API answer each role what the roles table allows: a contributor
sees only the name and type of the connections shared with them, as on the pages."""

from __future__ import annotations

import pytest

from tests.connections.factories import ConnectionFactory

CONNECTIONS = "/api/v1/connections/"
NAME_AND_TYPE = {"id", "display_name", "kind", "kind_label"}
ADMINISTRATORS_ONLY = {"status", "who_can_use", "last_error", "last_checked_at", "created_at"}


@pytest.fixture
def shared():
    return ConnectionFactory(
        who_can_use="administrators_and_contributors",
        status="failing",
        last_error="The API key was refused.",
    )


def test_a_contributor_sees_only_the_name_and_type(api_bob, shared):
    listed = api_bob.get(CONNECTIONS).json()["results"]
    one = api_bob.get(f"{CONNECTIONS}{shared.pk}/").json()

    assert [set(connection) for connection in listed] == [NAME_AND_TYPE]
    assert set(one) == NAME_AND_TYPE
    assert (one["display_name"], one["kind"]) == (shared.display_name, shared.kind)


def test_an_administrator_sees_everything_but_the_secrets(api_alice, shared):
    one = api_alice.get(f"{CONNECTIONS}{shared.pk}/").json()

    assert set(one) == NAME_AND_TYPE | ADMINISTRATORS_ONLY
    assert (one["status"], one["last_error"]) == ("failing", "The API key was refused.")


@pytest.mark.parametrize("query", ["status=failing", "who_can_use=administrators"])
def test_a_contributor_cannot_learn_them_by_filtering(api_bob, api_alice, shared, query):
    refused = api_bob.get(f"{CONNECTIONS}?{query}")

    assert refused.status_code == 400
    field = query.split("=")[0]
    assert refused.json()["errors"] == [
        {"field": field, "message": "Only administrators can filter connections by this."}
    ]
    assert api_alice.get(f"{CONNECTIONS}?{query}").status_code == 200


def test_the_document_says_which_fields_only_administrators_get(openapi_document):
    connection = openapi_document.document["components"]["schemas"]["Connection"]

    assert set(connection["required"]) == NAME_AND_TYPE
    for name in ADMINISTRATORS_ONLY:
        assert connection["properties"][name]["description"].startswith("Administrators only.")


def test_the_document_says_which_filters_only_administrators_use(openapi_document):
    operation = openapi_document.document["paths"][CONNECTIONS]["get"]
    descriptions = {p["name"]: p.get("description", "") for p in operation["parameters"]}

    assert descriptions["status"].startswith("Administrators only.")
    assert descriptions["who_can_use"].startswith("Administrators only.")
    assert not descriptions["kind"].startswith("Administrators only.")
