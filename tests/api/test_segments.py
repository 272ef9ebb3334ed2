"""Segments through the API: the builder's rules and messages, estimate, refresh, members."""

from __future__ import annotations

import jsonschema
import pytest

from segments.models import ProfileField, Segment
from segments.rules import RuleError, validate
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db
SEGMENTS = "/api/v1/segments/"
GMAIL = {"match": "all", "conditions": [{"field": "email", "operator": "contains", "value": "gm"}]}


def test_a_contributor_creates_a_segment_with_builder_rules(api_bob, bob):
    response = api_bob.post(
        SEGMENTS, {"name": "Gmail", "description": "", "rules": GMAIL}, format="json"
    )
    assert response.status_code == 201, response.content
    segment = Segment.objects.get()
    assert (segment.name, segment.rules, segment.created_by) == ("Gmail", GMAIL, bob)
    assert response.json()["refresh_state"] == "idle"


def test_rules_are_checked_by_the_builders_validation(api_bob):
    rules = {"match": "all", "conditions": [{"field": "shoe_size", "operator": "equals"}]}
    response = api_bob.post(SEGMENTS, {"name": "Feet", "rules": rules}, format="json")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "rules" and "shoe_size" in error["message"]
    assert not Segment.objects.exists()


def test_patch_changes_only_what_it_sends(api_bob):
    segment = SegmentFactory(name="Old", rules=GMAIL)
    response = api_bob.patch(f"{SEGMENTS}{segment.pk}/", {"name": "New"}, format="json")
    assert response.status_code == 200, response.content
    segment.refresh_from_db()
    assert (segment.name, segment.rules) == ("New", GMAIL)


def test_estimate_counts_without_saving(api_bob):
    ProfileFactory(email="a@gmail.com")
    ProfileFactory(email="b@example.com")
    response = api_bob.post(f"{SEGMENTS}estimate/", {"rules": GMAIL}, format="json")
    assert response.json() == {"count": 1}
    assert not Segment.objects.exists()


def test_refresh_is_queued_once_and_polled_on_the_segment(api_bob):
    segment = SegmentFactory()
    first = api_bob.post(f"{SEGMENTS}{segment.pk}/refresh/")
    assert first.status_code == 202
    assert (first.json()["queued"], first.json()["segment"]["refresh_state"]) == (True, "queued")
    again = api_bob.post(f"{SEGMENTS}{segment.pk}/refresh/").json()
    assert again["queued"] is False
    assert api_bob.get(f"{SEGMENTS}{segment.pk}/").json()["refresh_state"] == "queued"


def test_members_come_in_cursor_pages_and_as_csv(api_charlie):
    for number in range(5):
        ProfileFactory(customer_id=f"m{number}", email=f"m{number}@example.com")
    segment = SegmentFactory()
    segment_refresh(segment_id=segment.pk)
    first = api_charlie.get(f"{SEGMENTS}{segment.pk}/members/?page_size=3").json()
    assert [m["customer_id"] for m in first["results"]] == ["m0", "m1", "m2"]
    second = api_charlie.get(first["next"]).json()
    assert [m["customer_id"] for m in second["results"]] == ["m3", "m4"]
    assert second["next"] is None

    csv = api_charlie.get(f"{SEGMENTS}{segment.pk}/members.csv")
    assert csv["Content-Type"] == "text/csv; charset=utf-8"
    lines = b"".join(csv.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == "customer_id,email,first_name,last_name"  # no attribute catalogued
    assert len(lines) == 6


def test_segments_are_filtered_by_name_and_status(api_charlie):
    SegmentFactory(name="Gold members", status="active")
    SegmentFactory(name="Silver members")
    names = [s["name"] for s in api_charlie.get(f"{SEGMENTS}?name=gold").json()["results"]]
    assert names == ["Gold members"]
    bad = api_charlie.get(f"{SEGMENTS}?status=nonsense")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "status"


def test_a_segment_is_removed(api_bob):
    segment = SegmentFactory()
    assert api_bob.delete(f"{SEGMENTS}{segment.pk}/").status_code == 204
    assert not Segment.objects.exists()


def test_the_field_catalogue_lists_each_field_with_its_type_and_operators(api_charlie):
    ProfileField.objects.create(name="signed_up", data_type="date")
    ProfileField.objects.create(name="email", is_builtin=True)

    fields = {
        field["name"]: field for field in api_charlie.get("/api/v1/fields/").json()["results"]
    }

    assert fields["signed_up"]["type"] == "date"
    assert "in_last_days" in fields["signed_up"]["operators"]
    assert "contains" not in fields["signed_up"]["operators"]
    assert fields["email"]["is_builtin"] is True
    assert api_charlie.get("/api/v1/fields/signed_up").json()["type"] == "date"


VALID_TREES = [
    GMAIL,
    {"conditions": [{"field": "email", "operator": "is_empty"}]},
    {
        "match": "any",
        "conditions": [
            {"field": "first_name", "operator": "in_list", "value": ["Ann", "Bo"]},
            {"match": "all", "conditions": [{"segment": 1, "operator": "not_member_of"}]},
            {"field": "email", "operator": "equals", "value": "A@x.io", "case_sensitive": True},
        ],
    },
    {"combine": "difference", "segments": [1, 2]},
]
MALFORMED_TREES = [
    {},
    {"match": "some", "conditions": [{"field": "email", "operator": "is_empty"}]},
    {"conditions": []},
    {"conditions": [{"field": "email"}]},
    {"conditions": [{"field": "email", "operator": "resembles"}]},
    {"conditions": [{"segment": 1, "operator": "equals"}]},
    {"combine": "union", "segments": [1]},
    {"combine": "overlap", "segments": [1, 2]},
]


def rules_validator(api_client) -> jsonschema.Draft202012Validator:
    document = api_client.get("/api/v1/openapi.json").json()
    rules = document["components"]["schemas"]["Segment"]["properties"]["rules"]
    return jsonschema.Draft202012Validator({**rules, "components": document["components"]})


def test_the_document_describes_the_rules_the_builder_accepts(api_charlie):
    validator = rules_validator(api_charlie)
    SegmentFactory(pk=1, name="One")
    SegmentFactory(pk=2, name="Two")
    for tree in VALID_TREES:
        validate(tree)  # the builder's check accepts it
        validator.validate(tree)
    for tree in MALFORMED_TREES:
        with pytest.raises(RuleError):
            validate(tree)
        assert not validator.is_valid(tree), tree


def test_the_document_speaks_the_callers_language(api_charlie):
    document = api_charlie.get("/api/v1/openapi.json", HTTP_ACCEPT_LANGUAGE="fr").json()

    assert document["components"]["schemas"]["RuleGroup"]["description"].startswith(
        "Des conditions remplies"
    )
    not_found = document["paths"]["/api/v1/segments/"]["get"]["responses"]["404"]
    assert not_found["description"].startswith("Cet objet n")
