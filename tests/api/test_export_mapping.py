"""An export's field mapping, tags, status and consent through the API, checked as the form
checks them."""

from __future__ import annotations

import pytest

from exports.models import Export
from segments.catalogue import refresh_field_catalogue
from tests.api.test_exports import EXPORTS, SHARED, new_export
from tests.connections.factories import ConnectionFactory
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db

ROWS = [
    {"profile_field": "email", "destination_key": "email"},
    {"profile_field": "plan", "destination_key": "[plan]", "when_empty": "clear"},
]


@pytest.fixture
def shared():
    refresh_field_catalogue({"plan": "text", "tier": "text"})
    return ConnectionFactory(who_can_use=SHARED)


def test_the_mapping_is_saved_and_read_back_in_order(api_alice, shared):
    response = api_alice.post(
        EXPORTS, new_export(shared, SegmentFactory(), mapping=ROWS), format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert [
        (row["profile_field"], row["destination_key"], row["when_empty"]) for row in body["mapping"]
    ] == [("email", "email", "leave"), ("plan", "[plan]", "clear")]
    # The service cannot be asked here: saved, and said so.
    assert any("mapped fields could not be checked" in text for text in body["warnings"])


def test_a_new_export_without_a_mapping_sends_the_email_as_before(api_alice, shared):
    response = api_alice.post(EXPORTS, new_export(shared, SegmentFactory()), format="json")

    assert [row["destination_key"] for row in response.json()["mapping"]] == ["email"]


def test_changing_something_else_keeps_the_mapping(api_alice, shared):
    created = api_alice.post(
        EXPORTS, new_export(shared, SegmentFactory(), mapping=ROWS), format="json"
    ).json()

    changed = api_alice.patch(
        f"{EXPORTS}{created['id']}/", {"display_name": "Renamed"}, format="json"
    )

    assert changed.status_code == 200, changed.content
    assert changed.json()["mapping"] == created["mapping"]


def test_two_profile_fields_onto_one_destination_field_are_refused(api_alice, shared):
    rows = [*ROWS, {"profile_field": "tier", "destination_key": "[plan]"}]
    response = api_alice.post(
        EXPORTS, new_export(shared, SegmentFactory(), mapping=rows), format="json"
    )

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "mapping"
    assert "“plan” and “tier” are both mapped to the destination field" in error["message"]
    assert not Export.objects.exists()


def test_tags_and_a_status_the_service_does_not_take_are_refused(api_alice, shared):
    response = api_alice.post(
        EXPORTS,
        new_export(shared, SegmentFactory(), fixed_tags=["vip"], new_subscriber_status="pending"),
        format="json",
    )

    assert response.status_code == 400
    messages = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert "has no tags" in messages["fixed_tags"]
    assert "does not take a status for new people" in messages["new_subscriber_status"]


def test_a_consent_field_that_is_not_yes_no_is_refused(api_alice):
    refresh_field_catalogue({"has_app": "boolean", "tier": "text"})
    shared = ConnectionFactory(campaign_monitor=True, who_can_use=SHARED)
    refused = api_alice.post(
        EXPORTS, new_export(shared, SegmentFactory(), consent_field="tier"), format="json"
    )

    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["field"] == "consent_field"
    assert "“tier” is a field of type “Text”. Pick a yes/no field" in error["message"]
    kept = api_alice.post(
        EXPORTS, new_export(shared, SegmentFactory(), consent_field="has_app"), format="json"
    )
    assert kept.status_code == 201, kept.content
    assert kept.json()["consent_field"] == "has_app"
