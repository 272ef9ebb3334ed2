"""An export's field mapping through the engine and a real backend, against the Campaign Monitor
fake: typed values arrive value by value, a changed attribute is sent again and nothing else,
a mapped field deleted at the service fails the run before anything is sent."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.translation import shown
from connections.services import backend_for
from connections.types.base import FieldType
from exports import engine, services
from exports.mapping import MappingRow, replace_rows
from exports.models import Export, ExportRun, ExportRunFailure
from segments.catalogue import refresh_field_catalogue
from segments.models import Profile
from tests.exports.conftest import PEOPLE, attributes

pytestmark = pytest.mark.django_db


@pytest.fixture
def export(cm_connection, cm_list_id, customers, alice):
    """An export mapping five attributes of different types into fields it creates."""
    backend = backend_for(cm_connection)
    created = {
        name: backend.create_field(cm_list_id, label, kind, options)
        for name, label, kind, options in [
            ("plan", "Plan", FieldType.TEXT, ()),
            ("ltv", "Lifetime value", FieldType.NUMBER, ()),
            ("renewal", "Renewal", FieldType.DATE, ()),
            ("has_app", "Has app", FieldType.TEXT, ()),
            ("tier", "Tier", FieldType.SINGLE_SELECT, ("Gold", "Silver")),
        ]
    }
    export = Export.objects.create(
        display_name="Customers", connection=cm_connection, list_id=cm_list_id, created_by=alice
    )
    export.segments.set([customers])
    replace_rows(
        export,
        [
            MappingRow("email", "email"),
            MappingRow("first_name", "first_name"),
            MappingRow("last_name", "last_name"),
            *(
                MappingRow(name, field.key, field.name, field.type)
                for name, field in created.items()
            ),
        ],
    )
    return Export.objects.get(pk=export.pk)


def run_now(export: Export) -> ExportRun:
    return engine.execute(services.run_request(export=export).pk)


def subscribers(cm, list_id: str) -> dict:
    return cm.state(list=list_id)["lists"][list_id]["subscribers"]


def imports(cm) -> int:
    counts = cm.state(summary=True)["stats"]["requests_by_endpoint"]
    return counts.get("POST /subscribers/{listid}/import.json", 0)


def expected_fields(number: int) -> dict:
    """What Campaign Monitor holds for person ``number``, in its formats (spec §10)."""
    return {
        "[Plan]": f"Plan {number}",
        "[Lifetimevalue]": f"{number}.5",
        "[Renewal]": f"2027/03/{number % 28 + 1:02d}",
        "[Hasapp]": "true" if number % 2 else "false",
        "[Tier]": "Gold" if number % 3 else "Silver",
    }


def test_five_mapped_attributes_arrive_typed_value_by_value(cm, cm_list_id, export):
    run = run_now(export)

    assert (run.status, run.added, run.failed, run.warnings) == ("succeeded", PEOPLE, 0, 0)
    held = subscribers(cm, cm_list_id)
    assert len(held) == PEOPLE
    for number in range(PEOPLE):
        person = held[f"person{number}@example.com"]
        assert person["Name"] == f"First{number} Last"
        assert person["CustomFields"] == expected_fields(number), number


def test_a_re_run_after_one_attribute_changed_for_one_percent_sends_exactly_those(
    cm, cm_list_id, export
):
    run_now(export)
    calls = imports(cm)
    changed = Profile.objects.filter(customer_id__in=["c005", "c105"])
    for profile in changed:
        profile.attributes = {**profile.attributes, "plan": "Enterprise"}
        profile.save()

    run = run_now(Export.objects.get(pk=export.pk))

    assert (run.status, run.sent, run.updated, run.unchanged) == ("succeeded", 2, 2, PEOPLE - 2)
    assert imports(cm) == calls + 1
    held = subscribers(cm, cm_list_id)
    assert held["person5@example.com"]["CustomFields"]["[Plan]"] == "Enterprise"
    assert held["person6@example.com"]["CustomFields"]["[Plan]"] == "Plan 6"


def test_an_added_mapping_sends_only_the_people_with_a_value_for_it(cm, cm_list_id, export):
    run_now(export)
    Profile.objects.filter(customer_id="c007").update(attributes={**attributes(7), "city": "Oslo"})
    refresh_field_catalogue({"city": "text"})
    city = backend_for(export.connection).create_field(cm_list_id, "City", FieldType.TEXT)
    rows = [
        MappingRow(
            row.profile_field, row.destination_key, row.destination_name, row.destination_type
        )
        for row in export.field_rows()
    ]
    replace_rows(export, [*rows, MappingRow("city", city.key, city.name, city.type)])

    run = run_now(Export.objects.get(pk=export.pk))

    assert (run.sent, run.unchanged) == (1, PEOPLE - 1)
    assert subscribers(cm, cm_list_id)["person7@example.com"]["CustomFields"]["[City]"] == "Oslo"


def test_a_value_the_service_refuses_fails_its_record_alone_with_the_reason(cm, cm_list_id, export):
    Profile.objects.filter(customer_id="c009").update(attributes={**attributes(9), "ltv": "lots"})

    run = run_now(export)

    assert (run.status, run.added, run.failed) == ("completed_with_warnings", PEOPLE - 1, 1)
    failure = ExportRunFailure.objects.get(run=run)
    assert (failure.email, failure.code) == ("person9@example.com", "invalid_value")
    assert "person9@example.com" not in subscribers(cm, cm_list_id)


def test_a_mapped_field_deleted_at_the_service_fails_the_run_before_anything_is_sent(
    cm, cm_list_id, export
):
    export.mappings.filter(destination_key="[Tier]").update(
        destination_key="[membership]", destination_name="Membership"
    )
    calls = imports(cm)

    run = run_now(Export.objects.get(pk=export.pk))

    assert run.status == "failed" and run.sent == 0
    assert imports(cm) == calls
    assert subscribers(cm, cm_list_id) == {}
    message = shown(run.last_error)
    assert "Membership" in message and "Customers" in message


def test_preview_shows_the_first_people_as_the_service_will_receive_them(
    cm, cm_list_id, export, as_alice
):
    preview = services.export_preview(export=export)

    assert (preview["added"], preview["updated"], preview["removed"]) == (PEOPLE, 0, 0)
    first = preview["payloads"][0]
    assert first["email"] == "person0@example.com"
    sent = dict(first["fields"])
    assert {name: sent.get(name) for name in ("Plan", "Lifetime value", "Renewal", "Tier")} == {
        "Plan": "Plan 0",
        "Lifetime value": "0.5",
        "Renewal": "2027/03/01",
        "Tier": "Silver",
    }
    assert subscribers(cm, cm_list_id) == {}  # nothing sent
    page = as_alice.get(reverse("exports:preview", args=[export.pk])).content.decode()
    assert "As the service will receive them" in page and "2027/03/01" in page


def test_a_value_sent_shortened_is_a_warning_counted_and_listed_not_a_failure(
    cm, cm_list_id, export
):
    Profile.objects.filter(customer_id="c004").update(
        attributes={**attributes(4), "plan": "P" * 300}
    )

    run = run_now(export)

    assert (run.status, run.sent, run.failed, run.warnings) == (
        "completed_with_warnings",
        PEOPLE,
        0,
        1,
    )
    warning = ExportRunFailure.objects.get(run=run)
    assert (warning.email, warning.code, warning.warning) == (
        "person4@example.com",
        "value_shortened",
        True,
    )
    held = subscribers(cm, cm_list_id)["person4@example.com"]["CustomFields"]
    assert held["[Plan]"] == "P" * 250
    # Delivered: the sync state has it, and the next run leaves it alone.
    again = run_now(Export.objects.get(pk=export.pk))
    assert (again.sent, again.unchanged) == (0, PEOPLE)


def test_a_consent_value_that_is_not_yes_or_no_is_a_warning_and_the_default_is_used(
    cm, cm_list_id, export
):
    Export.objects.filter(pk=export.pk).update(
        consent_field="has_app", consent_default=Export.Consent.YES
    )
    for customer_id, value in (("c002", "TRUE"), ("c003", " 0 "), ("c004", "maybe"), ("c006", "Y")):
        Profile.objects.filter(customer_id=customer_id).update(
            attributes={**attributes(int(customer_id[1:])), "has_app": value}
        )

    run = run_now(Export.objects.get(pk=export.pk))

    assert (run.status, run.sent, run.failed, run.warnings) == (
        "completed_with_warnings",
        PEOPLE,
        0,
        2,
    )
    warnings = ExportRunFailure.objects.filter(run=run, warning=True).order_by("email")
    assert [(row.email, row.code) for row in warnings] == [
        ("person4@example.com", "consent_unreadable"),
        ("person6@example.com", "consent_unreadable"),
    ]
    assert "“has_app” holds “maybe”, which is not yes or no" in shown(warnings[0].reason)
    held = subscribers(cm, cm_list_id)
    consent = {number: held[f"person{number}@example.com"]["ConsentToTrack"] for number in range(7)}
    # 1 and 5 say "true", 0 "false"; 2 "TRUE", 3 "0"; 4 and 6 fall back to the export's "yes".
    assert consent == {0: "No", 1: "Yes", 2: "Yes", 3: "No", 4: "Yes", 5: "Yes", 6: "Yes"}


def test_consent_to_track_is_the_exports_for_new_people_and_unchanged_for_people_sent_before(
    cm, cm_list_id, export
):
    Export.objects.filter(pk=export.pk).update(consent_default=Export.Consent.YES)
    run_now(Export.objects.get(pk=export.pk))
    assert {person["ConsentToTrack"] for person in subscribers(cm, cm_list_id).values()} == {"Yes"}
    # person1 turns tracking off at Campaign Monitor; then their plan changes here.
    backend_for(export.connection).client.import_subscribers(
        cm_list_id, [{"EmailAddress": "person1@example.com", "ConsentToTrack": "No"}]
    )
    profile = Profile.objects.get(customer_id="c001")
    profile.attributes = {**profile.attributes, "plan": "Enterprise"}
    profile.save()

    run = run_now(Export.objects.get(pk=export.pk))

    assert (run.status, run.updated) == ("succeeded", 1)
    person = subscribers(cm, cm_list_id)["person1@example.com"]
    assert (person["CustomFields"]["[Plan]"], person["ConsentToTrack"]) == ("Enterprise", "No")
    # Who is new came from the sync state: no subscriber was read, on either run.
    calls = cm.state(summary=True)["stats"]["requests_by_endpoint"]
    assert "GET /subscribers/{listid}.json" not in calls
