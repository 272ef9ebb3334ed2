"""Exclusions through the API (administrators only), as the OpenAPI document describes them."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from core.consent import ConsentState
from exports.models import ConsentRule, Exclusion
from segments.models import ConsentRecord
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db
EXCLUSIONS = "/api/v1/exclusions"


def test_an_address_is_added_normalised_and_read_back(api_alice):
    response = api_alice.post(
        EXCLUSIONS, {"kind": "address", "value": "  Ann@Example.ORG ", "note": "Asked"}, "json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["value"], body["segment"], body["note"]) == (
        "address",
        "ann@example.org",
        None,
        "Asked",
    )
    listed = api_alice.get(EXCLUSIONS, {"kind": "address"}).json()["results"]
    assert [item["value"] for item in listed] == ["ann@example.org"]
    assert AuditEntry.objects.filter(action="exclusion.added").count() == 1


def test_a_segment_is_excluded_by_its_id(api_alice):
    segment = SegmentFactory(name="Staff")
    response = api_alice.post(EXCLUSIONS, {"kind": "segment", "segment": segment.pk}, "json")
    assert response.status_code == 201
    assert response.json()["segment"] == segment.pk
    again = api_alice.post(EXCLUSIONS, {"kind": "segment", "segment": segment.pk}, "json")
    assert again.status_code == 400
    assert "excluded already" in again.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "address", "value": "not an address"}, "value"),
        ({"kind": "domain", "value": "localhost"}, "value"),
        ({"kind": "segment"}, "segment"),
        ({"kind": "domain", "value": "example.org", "segment": 1}, "segment"),
    ],
)
def test_what_is_not_valid_is_refused_with_the_field(api_alice, body, field):
    SegmentFactory(pk=1)
    response = api_alice.post(EXCLUSIONS, body, "json")
    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]
    assert not Exclusion.objects.exists()


def test_bulk_adds_folds_repeats_and_counts_those_already_there(api_alice):
    Exclusion.objects.create(kind="address", value="b@example.org")
    response = api_alice.post(
        f"{EXCLUSIONS}/bulk",
        {"kind": "address", "values": ["A@example.org", "a@example.org ", "b@example.org", ""]},
        "json",
    )
    assert response.status_code == 200
    assert response.json() == {"added": 1, "already": 1, "duplicates": 1}
    assert sorted(Exclusion.objects.values_list("value", flat=True)) == [
        "a@example.org",
        "b@example.org",
    ]


def test_bulk_refuses_everything_when_a_value_is_invalid_naming_its_position(api_alice):
    response = api_alice.post(
        f"{EXCLUSIONS}/bulk",
        {"kind": "address", "values": ["a@example.org", "nope", "c@example.org", "@x"]},
        "json",
    )
    assert response.status_code == 400
    messages = [error["message"] for error in response.json()["errors"]]
    assert any("Line 2" in message and "nope" in message for message in messages)
    assert any("Line 4" in message for message in messages)
    assert not Exclusion.objects.exists()


def test_the_note_changes_and_removal_is_audited(api_alice):
    exclusion = Exclusion.objects.create(kind="domain", value="example.net")
    response = api_alice.patch(f"{EXCLUSIONS}/{exclusion.pk}", {"note": "Partner"}, "json")
    assert (response.status_code, response.json()["note"]) == (200, "Partner")
    assert api_alice.delete(f"{EXCLUSIONS}/{exclusion.pk}").status_code == 204
    assert not Exclusion.objects.exists()
    entries = AuditEntry.objects.filter(object_type="exclusion").order_by("id")
    assert list(entries.values_list("action", flat=True)) == [
        "exclusion.updated",
        "exclusion.removed",
    ]


def test_contributors_are_told_why_they_are_refused(api_bob):
    response = api_bob.get(EXCLUSIONS)
    assert response.status_code == 403
    assert "Only administrators can see and change exclusions" in response.json()["detail"]


def test_the_consent_rule_is_read_with_the_addresses_it_excludes_by_state(api_alice):
    ConsentRecord.objects.create(email="a@example.org", state=ConsentState.BOUNCED)
    ConsentRecord.objects.create(email="b@example.org", state=ConsentState.BOUNCED, list_id="x")
    ConsentRecord.objects.create(email="b@example.org", state=ConsentState.BOUNCED, list_id="y")
    body = api_alice.get(f"{EXCLUSIONS}/consent-rule").json()
    assert body["scope"] == "every_export"
    by_state = {row["state"]: row["addresses"] for row in body["excluded_by_state"]}
    assert (by_state["bounced"], by_state["unsubscribed"]) == (2, 0)


def test_the_consent_rule_is_changed_and_audited(api_alice):
    response = api_alice.put(f"{EXCLUSIONS}/consent-rule", {"scope": "same_connection"}, "json")
    assert (response.status_code, response.json()["scope"]) == (200, "same_connection")
    assert ConsentRule.load().scope == ConsentRule.Scope.SAME_CONNECTION
    entry = AuditEntry.objects.get(action="consent_rule.updated")
    assert (entry.actor_label, entry.after["scope"]) == ("alice", "same_connection")


def test_a_consent_rule_that_is_not_one_of_the_two_is_refused(api_alice):
    response = api_alice.put(f"{EXCLUSIONS}/consent-rule", {"scope": "nobody"}, "json")
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["scope"]
    assert ConsentRule.load().scope == ConsentRule.Scope.EVERY_EXPORT


@pytest.mark.parametrize("client_fixture", ["api_bob", "api_charlie"])
def test_only_administrators_read_or_change_the_consent_rule(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    for response in (
        client.get(f"{EXCLUSIONS}/consent-rule"),
        client.put(f"{EXCLUSIONS}/consent-rule", {"scope": "same_connection"}, "json"),
    ):
        assert response.status_code == 403
        assert "Only administrators can see and change exclusions" in response.json()["detail"]
    assert ConsentRule.load().scope == ConsentRule.Scope.EVERY_EXPORT
    assert not AuditEntry.objects.filter(action="consent_rule.updated").exists()
