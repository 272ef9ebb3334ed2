"""End to end with a real worker: exports with five mapped attributes to the Campaign Monitor,
Mailchimp, Autopilot and Ortto fakes, compared value by value in the fakes' state; a re-run after
1% of one attribute changed sends exactly those (issue 24)."""

from __future__ import annotations

import pytest

from connections.services import backend_for
from connections.types.autopilot.client import custom_key
from connections.types.base import DestinationField, FieldType
from exports import services
from exports.mapping import MappingRow, replace_rows
from exports.models import Export, ExportRun
from fakes.testing import running_fake
from segments.catalogue import refresh_field_catalogue
from segments.models import Profile
from segments.services import segment_refresh
from tests.e2e.test_export_runs import (
    _connection,
    autopilot_connection,
    autopilot_list_id,
    cm_connection,
    cm_list_id,
    finished,
)
from tests.e2e.test_mailchimp_runs import KEY, audience_id, mc_fake, members
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PEOPLE = 200
# The fixtures, shared with the other end-to-end tests.
__all__ = ["autopilot_connection", "cm_connection", "mc_fake"]
TYPES = {
    "plan": "text",
    "ltv": "number",
    "renewal": "date",
    "has_app": "boolean",
    "tier": "text",
    "visits": "number",
}
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
        "visits": number * 3,
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


def mapped_export(
    connection, list_id: str, segment, user, fields=FIELDS, **options
) -> tuple[Export, dict]:
    """An export mapping the five attributes into fields it creates at the service first
    (or, given a ``DestinationField``, one the service already has)."""
    backend = backend_for(connection)
    created = {
        spec[0]: spec[1]
        if isinstance(spec[1], DestinationField)
        else backend.create_field(list_id, *spec[1:])
        for spec in fields
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


#: Autopilot's fields: created by the first contact sent with a value; "Visits" an integer
#: field, which Autopilot has but does not create for a number of ours (that is a float).
AUTOPILOT_FIELDS = [
    *FIELDS[:3],
    ("has_app", "Has app", FieldType.BOOLEAN, ()),
    ("visits", DestinationField(custom_key("integer", "Visits"), "Visits", FieldType.NUMBER)),
]


def test_autopilot_holds_every_mapped_value_and_never_sends_unsubscribed_false(
    worker, autopilot_fake, autopilot_connection, customers, alice
):
    list_id = autopilot_list_id(autopilot_fake)
    # Two people unsubscribed at Autopilot before the export knew them: a contact sent
    # without ``unsubscribed`` keeps its own, one sent ``unsubscribed: false`` is resubscribed.
    opted_out = ["person4@example.com", "person7@example.com"]
    autopilot_fake.seed(
        accounts=[
            {
                "id": autopilot_fake.state()["accounts"][0]["id"],
                "contacts": [{"Email": email, "unsubscribed": True} for email in opted_out],
            }
        ]
    )
    export, keys = mapped_export(
        autopilot_connection, list_id, customers, alice, fields=AUTOPILOT_FIELDS
    )

    first = run(export, alice)

    assert (first.status, first.sent, first.failed) == ("succeeded", PEOPLE, 0), worker.log()[
        -3000:
    ]
    held = autopilot_fake.state(list=list_id)["accounts"][0]["lists"][list_id]["members"]
    assert len(held) == PEOPLE
    for number in range(PEOPLE):
        person = held[f"person{number}@example.com"]
        assert person["FirstName"] == f"First{number}"
        assert person["custom"] == {
            keys["plan"]: f"Plan {number}",
            keys["ltv"]: number + 0.5,
            keys["renewal"]: f"2027-03-{number % 28 + 1:02d}T00:00:00.000Z",
            keys["has_app"]: bool(number % 2),
            keys["visits"]: number * 3,
        }, number
        assert person["unsubscribed"] is (person["Email"] in opted_out), number
    fields = {
        item["key"]: item["fieldType"]
        for item in autopilot_fake.state()["accounts"][0]["custom_fields"]
    }
    assert fields == {
        "string--Plan": "string",
        "float--Lifetime--value": "float",
        "date--Renewal": "date",
        "boolean--Has--app": "boolean",
        "integer--Visits": "integer",
    }
    upserts = autopilot_fake.state(summary=True)["stats"]["requests_by_endpoint"]

    changed = change_plan_of_one_percent() | change_plan_of(["c004"])
    second = run(Export.objects.get(pk=export.pk), alice)

    # One of them (person4, on the list since the first run) is among those sent again:
    # their data is updated and they stay unsubscribed.
    assert (second.sent, second.updated, second.unchanged) == (
        len(changed),
        len(changed),
        PEOPLE - len(changed),
    )
    after = autopilot_fake.state(summary=True)["stats"]["requests_by_endpoint"]
    bulk = "POST /contacts"
    assert after[bulk] == upserts[bulk] + 1
    held = autopilot_fake.state(list=list_id)["accounts"][0]["lists"][list_id]["members"]
    assert {
        email for email, person in held.items() if person["custom"][keys["plan"]] == "Enterprise"
    } == changed
    assert {email for email, person in held.items() if person["unsubscribed"]} == set(opted_out)


def change_plan_of(customer_ids: list[str]) -> set[str]:
    changed = set()
    for profile in Profile.objects.filter(customer_id__in=customer_ids):
        profile.attributes = {**profile.attributes, "plan": "Enterprise"}
        profile.save()
        changed.add(profile.email)
    return changed


ORTTO_AUDIENCE = "a00000000000000000000001"
ORTTO_FIELDS = [
    *FIELDS[:3],
    ("has_app", "Has app", FieldType.BOOLEAN, ()),
    FIELDS[4],
]


@pytest.fixture
def ortto_fake(settings, monkeypatch):
    """Started before the worker (the test names it first): the worker reads its address."""
    with running_fake("ortto", rate_limit=20) as fake:
        settings.ORTTO_API_URLS = {**settings.ORTTO_API_URLS, "global": fake.base_url}
        monkeypatch.setenv("ORTTO_API_URL_GLOBAL", fake.base_url)
        monkeypatch.setenv("ORTTO_RATE_LIMIT", "20")
        yield fake


def test_ortto_holds_every_mapped_value_with_tags_and_email_permission(
    ortto_fake, worker, customers, alice
):
    connection = _connection("ortto", {"api_key": "demo-ortto-key", "region": "global"}, alice)
    # Someone Ortto already holds, whose email permission is off: merging data keeps it off.
    ortto_fake.seed(
        accounts=[
            {"id": "demo", "people": [{"str::email": "person1@example.com", "bol::p": False}]}
        ]
    )
    export, keys = mapped_export(
        connection,
        ORTTO_AUDIENCE,
        customers,
        alice,
        fields=ORTTO_FIELDS,
        fixed_tags=["customer"],
        tags_field="tier",
        consent_field="has_app",
        consent_default=Export.Consent.NO,
    )

    first = run(export, alice)

    assert (first.status, first.sent, first.failed) == ("succeeded", PEOPLE, 0), worker.log()[
        -3000:
    ]
    state = ortto_fake.state()["accounts"][0]
    assert len(state["audiences"][ORTTO_AUDIENCE]["members"]) == PEOPLE
    held = state["people"]
    for number in range(PEOPLE):
        person = held[f"person{number}@example.com"]
        fields = person["fields"]
        assert fields["str::first"] == f"First{number}"
        assert {name: fields[key] for name, key in keys.items()} == {
            "plan": f"Plan {number}",
            "ltv": number * 1000 + 500,  # a decimal field, in thousandths
            "renewal": {"year": 2027, "month": 3, "day": number % 28 + 1, "timezone": "UTC"},
            "has_app": bool(number % 2),
            "tier": "Gold" if number % 3 else "Silver",
        }, number
        # New people get the consent of their "has_app"; person1 keeps the permission off.
        assert fields["bol::p"] is (bool(number % 2) and number != 1), number
        assert person["tags"] == sorted(["customer", "Gold" if number % 3 else "Silver"]), number
    merges = ortto_fake.state(summary=True)["stats"]["requests_by_endpoint"]

    changed = change_plan_of_one_percent()
    second = run(Export.objects.get(pk=export.pk), alice)

    assert (second.sent, second.unchanged) == (len(changed), PEOPLE - len(changed))
    after = ortto_fake.state(summary=True)["stats"]["requests_by_endpoint"]
    merge = "POST /v1/person/merge"
    # Both are known now: one merge, no second merge creating anyone.
    assert after[merge] == merges[merge] + 1
    held = ortto_fake.state()["accounts"][0]["people"]
    assert {
        email for email, person in held.items() if person["fields"][keys["plan"]] == "Enterprise"
    } == changed
    # Merged as known people, without a permission field: theirs stays as it was.
    assert [held[email]["fields"]["bol::p"] for email in sorted(changed)] == [True, True]
