"""End to end with a real worker: exports with five mapped attributes to the Campaign Monitor and
Mailchimp fakes, compared value by value in the fakes' state; a re-run after 1% of one attribute
changed sends exactly those (issue 24)."""

from __future__ import annotations

import pytest

from connections.services import backend_for
from connections.types.base import FieldType
from exports import services
from exports.mapping import MappingRow, replace_rows
from exports.models import Export, ExportRun
from segments.catalogue import refresh_field_catalogue
from segments.models import Profile
from segments.services import segment_refresh
from tests.e2e.test_export_runs import cm_connection, cm_list_id, finished
from tests.e2e.test_mailchimp_runs import KEY, audience_id, mc_fake, members
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PEOPLE = 200
__all__ = ["cm_connection", "mc_fake"]  # the fixtures, shared with the other end-to-end tests
TYPES = {"plan": "text", "ltv": "number", "renewal": "date", "has_app": "boolean", "tier": "text"}
#: (profile field, destination field's name, its type, the select's options)
FIELDS = [
    ("plan", "Plan", FieldType.TEXT, ()),
    ("ltv", "Lifetime value", FieldType.NUMBER, ()),
    ("renewal", "Renewal", FieldType.DATE, ()),
    ("has_app", "Has app", FieldType.TEXT, ()),
    ("tier", "Tier", FieldType.SINGLE_SELECT, ("Gold", "Silver")),
]


def attributes(number: int) -> dict:
    return {
        "plan": f"Plan {number}",
        "ltv": number + 0.5,
        "renewal": f"2027-03-{number % 28 + 1:02d}",
        "has_app": "true" if number % 2 else "false",
        "tier": "Gold" if number % 3 else "Silver",
    }


@pytest.fixture
def customers():
    for number in range(PEOPLE):
        ProfileFactory(
            customer_id=f"c{number:03d}",
            email=f"person{number}@example.com",
            first_name=f"First{number}",
            last_name="Last",
            attributes=attributes(number),
        )
    refresh_field_catalogue(TYPES)
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "customer_id", "operator": "is_not_empty"}]}
    )
    segment_refresh(segment_id=segment.pk)
    return segment


def mapped_export(connection, list_id: str, segment, user, **options) -> tuple[Export, dict]:
    """An export mapping the five attributes into fields it creates at the service first."""
    backend = backend_for(connection)
    created = {
        name: backend.create_field(list_id, label, kind, choices)
        for name, label, kind, choices in FIELDS
    }
    export = Export.objects.create(
        display_name=f"Customers to {connection.kind}",
        connection=connection,
        list_id=list_id,
        created_by=user,
        **options,
    )
    export.segments.set([segment])
    replace_rows(
        export,
        [
            MappingRow("email", "email"),
            MappingRow("first_name", "first_name"),
            MappingRow("last_name", "last_name"),
            *(MappingRow(name, f.key, f.name, f.type) for name, f in created.items()),
        ],
    )
    return Export.objects.get(pk=export.pk), {name: f.key for name, f in created.items()}


def run(export: Export, user) -> ExportRun:
    return finished(services.run_request(export=export, user=user))


def change_plan_of_one_percent() -> set[str]:
    changed = set()
    for profile in Profile.objects.filter(customer_id__in=["c005", "c105"]):
        profile.attributes = {**profile.attributes, "plan": "Enterprise"}
        profile.save()
        changed.add(profile.email)
    return changed


def test_campaign_monitor_holds_every_mapped_value_and_a_re_run_sends_only_the_changed(
    worker, cm_fake, cm_connection, customers, alice
):
    list_id = cm_list_id(cm_fake)
    export, keys = mapped_export(cm_connection, list_id, customers, alice)

    first = run(export, alice)

    assert (first.status, first.added, first.failed) == ("succeeded", PEOPLE, 0)
    held = cm_fake.state(list=list_id)["lists"][list_id]["subscribers"]
    for number in range(PEOPLE):
        person = held[f"person{number}@example.com"]
        assert person["CustomFields"] == {
            keys["plan"]: f"Plan {number}",
            keys["ltv"]: f"{number}.5",
            keys["renewal"]: f"2027/03/{number % 28 + 1:02d}",
            keys["has_app"]: "true" if number % 2 else "false",
            keys["tier"]: "Gold" if number % 3 else "Silver",
        }, number
    imports = cm_fake.state(summary=True)["stats"]["requests_by_endpoint"]
    calls = imports["POST /subscribers/{listid}/import.json"]

    changed = change_plan_of_one_percent()
    second = run(Export.objects.get(pk=export.pk), alice)

    assert (second.sent, second.unchanged) == (len(changed), PEOPLE - len(changed))
    after = cm_fake.state(summary=True)["stats"]["requests_by_endpoint"]
    assert after["POST /subscribers/{listid}/import.json"] == calls + 1
    held = cm_fake.state(list=list_id)["lists"][list_id]["subscribers"]
    assert {
        email
        for email, person in held.items()
        if person["CustomFields"][keys["plan"]] == "Enterprise"
    } == changed


@pytest.fixture
def mc_connection(alice):
    from tests.e2e.test_export_runs import _connection

    return _connection("mailchimp", {"api_key": KEY}, alice)


def test_mailchimp_holds_every_mapped_value_with_tags_and_pending_status(
    worker, mc_fake, mc_connection, customers, alice
):
    audience = audience_id(mc_fake)
    export, keys = mapped_export(
        mc_connection,
        audience,
        customers,
        alice,
        fixed_tags=["customer"],
        new_subscriber_status="pending",
    )

    first = run(export, alice)

    assert (first.status, first.added, first.failed) == ("succeeded", PEOPLE, 0)
    held = members(mc_fake, audience)
    for number in range(PEOPLE):
        person = held[f"person{number}@example.com"]
        assert person["status"] == "pending"
        assert "customer" in person["tags"]
        merge = person["merge_fields"]
        assert merge["FNAME"] == f"First{number}"
        assert {name: merge[key] for name, key in keys.items()} == {
            "plan": f"Plan {number}",
            "ltv": number + 0.5,
            "renewal": f"2027-03-{number % 28 + 1:02d}",
            "has_app": "true" if number % 2 else "false",
            "tier": "Gold" if number % 3 else "Silver",
        }, number

    changed = change_plan_of_one_percent()
    second = run(Export.objects.get(pk=export.pk), alice)

    assert (second.sent, second.unchanged) == (len(changed), PEOPLE - len(changed))
    held = members(mc_fake, audience)
    assert {
        email
        for email, person in held.items()
        if person["merge_fields"][keys["plan"]] == "Enterprise"
    } == changed
