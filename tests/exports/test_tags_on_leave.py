"""Tags through the engine and the Mailchimp backend against its fake: the export's fixed tags
and a profile field's tags are added; in mirror mode with **remove tags on leave**, people who
leave lose the export's tags and stay in the audience."""

from __future__ import annotations

import pytest
from django.utils import timezone

from connections.models import Connection
from connections.services import credentials_encrypt
from exports import engine, services
from exports.models import Export, ExportRun, SyncState
from fakes.testing import running_fake
from segments.catalogue import refresh_field_catalogue
from segments.models import Profile
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db
KEY = "demo0mailchimp0key-us21"


@pytest.fixture
def mc(settings):
    with running_fake("mailchimp") as fake:
        settings.MAILCHIMP_API_URL = fake.base_url
        yield fake


@pytest.fixture
def mc_connection(mc, alice):
    return Connection.objects.create(
        kind="mailchimp",
        display_name="MC",
        who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
        consent_given_by=alice,
        consent_given_at=timezone.now(),
        created_by=alice,
        encrypted_credentials=credentials_encrypt({"api_key": KEY}),
    )


@pytest.fixture
def gold():
    for number in range(10):
        ProfileFactory(
            customer_id=f"c{number}",
            email=f"person{number}@example.com",
            attributes={"plan": "gold", "interests": "golf, sailing" if number % 2 else ""},
        )
    refresh_field_catalogue({"plan": "text", "interests": "text"})
    segment = SegmentFactory(
        rules={
            "match": "all",
            "conditions": [{"field": "plan", "operator": "equals", "value": "gold"}],
        }
    )
    segment_refresh(segment_id=segment.pk)
    return segment


def run_now(export: Export) -> ExportRun:
    return engine.execute(services.run_request(export=export).pk)


def members(mc, audience: str) -> dict:
    return mc.state(list=audience)["accounts"][0]["audiences"][audience]["members"]


def test_leavers_lose_the_exports_tags_and_stay_in_the_audience(mc, mc_connection, gold, alice):
    audience = next(iter(mc.state(summary=True)["accounts"][0]["audiences"]))
    export = Export.objects.create(
        display_name="Gold members",
        connection=mc_connection,
        list_id=audience,
        sync_mode=Export.SyncMode.MIRROR,
        fixed_tags=["gold"],
        tags_field="interests",
        remove_tags_on_leave=True,
        created_by=alice,
    )
    export.segments.set([gold])

    first = run_now(export)

    assert (first.status, first.added) == ("succeeded", 10)
    held = members(mc, audience)
    assert sorted(held["person1@example.com"]["tags"]) == ["gold", "golf", "sailing"]
    assert held["person2@example.com"]["tags"] == ["gold"]

    Profile.objects.filter(customer_id__in=["c3", "c4"]).update(
        attributes={"plan": "basic"}, updated_at=timezone.now()
    )
    segment_refresh(segment_id=gold.pk)
    second = run_now(Export.objects.get(pk=export.pk))

    assert (second.status, second.removed, second.unchanged) == ("succeeded", 2, 8)
    held = members(mc, audience)
    for leaver in ("person3@example.com", "person4@example.com"):
        assert held[leaver]["status"] == "subscribed"
        assert "gold" not in held[leaver]["tags"]
    # person3 was sent "golf, sailing" from the tags field: those go with the fixed tag.
    assert held["person3@example.com"]["tags"] == []
    assert sorted(held["person5@example.com"]["tags"]) == ["gold", "golf", "sailing"]


def test_leavers_lose_the_tags_they_were_last_sent_from_the_tags_field(
    mc, mc_connection, gold, alice
):
    audience = next(iter(mc.state(summary=True)["accounts"][0]["audiences"]))
    export = Export.objects.create(
        display_name="Gold interests",
        connection=mc_connection,
        list_id=audience,
        sync_mode=Export.SyncMode.MIRROR,
        tags_field="interests",
        remove_tags_on_leave=True,
        created_by=alice,
    )
    export.segments.set([gold])
    run_now(export)
    # person1's interests change: the run sends the new ones, and the sync state keeps them.
    Profile.objects.filter(customer_id="c1").update(
        attributes={"plan": "gold", "interests": ["chess"]}, updated_at=timezone.now()
    )
    segment_refresh(segment_id=gold.pk)
    run_now(Export.objects.get(pk=export.pk))
    assert SyncState.objects.get(export=export, email="person1@example.com").tags == ["chess"]
    assert SyncState.objects.get(export=export, email="person2@example.com").tags is None

    Profile.objects.filter(customer_id__in=["c1", "c3"]).update(
        attributes={"plan": "basic", "interests": "knitting"}, updated_at=timezone.now()
    )
    segment_refresh(segment_id=gold.pk)
    left = run_now(Export.objects.get(pk=export.pk))

    assert (left.status, left.removed) == ("succeeded", 2)
    held = members(mc, audience)
    assert sorted(held["person1@example.com"]["tags"]) == ["golf", "sailing"]
    assert held["person3@example.com"]["tags"] == []
    assert sorted(held["person5@example.com"]["tags"]) == ["golf", "sailing"]
    states = SyncState.objects.filter(export=export, email__in=["person1@example.com"])
    assert [(state.state, state.tags) for state in states] == [(SyncState.State.REMOVED, None)]


def test_forty_leavers_lose_their_tags_in_a_few_calls_not_one_per_person(mc, mc_connection, alice):
    for number in range(50):
        ProfileFactory(
            customer_id=f"c{number}",
            email=f"person{number}@example.com",
            attributes={"plan": "gold", "interests": "golf" if number % 2 else "sailing"},
        )
    refresh_field_catalogue({"plan": "text", "interests": "text"})
    segment = SegmentFactory(
        rules={
            "match": "all",
            "conditions": [{"field": "plan", "operator": "equals", "value": "gold"}],
        }
    )
    segment_refresh(segment_id=segment.pk)
    audience = next(iter(mc.state(summary=True)["accounts"][0]["audiences"]))
    export = Export.objects.create(
        display_name="Gold members",
        connection=mc_connection,
        list_id=audience,
        sync_mode=Export.SyncMode.MIRROR,
        fixed_tags=["gold"],
        tags_field="interests",
        remove_tags_on_leave=True,
        created_by=alice,
    )
    export.segments.set([segment])
    run_now(export)
    before = mc.state(summary=True)["stats"]["requests_by_endpoint"]

    Profile.objects.filter(customer_id__in=[f"c{n}" for n in range(40)]).update(
        attributes={"plan": "basic"}, updated_at=timezone.now()
    )
    segment_refresh(segment_id=segment.pk)
    left = run_now(Export.objects.get(pk=export.pk))

    assert (left.status, left.removed) == ("succeeded", 40)
    after = mc.state(summary=True)["stats"]["requests_by_endpoint"]
    calls = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}
    # The run's check of the merge fields; the audience's tags read once, then one call per
    # tag: gold, golf and sailing.
    assert calls == {
        "GET /lists/{list_id}/merge-fields": 1,
        "GET /lists/{list_id}/segments": 1,
        "POST /lists/{list_id}/segments/{segment_id}": 3,
    }
    held = members(mc, audience)
    assert all(held[f"person{n}@example.com"]["tags"] == [] for n in range(40))
    assert sorted(held["person41@example.com"]["tags"]) == ["gold", "golf"]


ORTTO_AUDIENCE = "a00000000000000000000001"


def test_ortto_leavers_lose_the_fixed_tags_and_those_of_their_tags_field(settings, gold, alice):
    with running_fake("ortto") as ortto:
        settings.ORTTO_API_URLS = {**settings.ORTTO_API_URLS, "global": ortto.base_url}
        connection = Connection.objects.create(
            kind="ortto",
            display_name="Ortto",
            who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
            consent_given_by=alice,
            consent_given_at=timezone.now(),
            created_by=alice,
            encrypted_credentials=credentials_encrypt(
                {"api_key": "demo-ortto-key", "region": "global"}
            ),
        )
        export = Export.objects.create(
            display_name="Gold members",
            connection=connection,
            list_id=ORTTO_AUDIENCE,
            sync_mode=Export.SyncMode.MIRROR,
            fixed_tags=["gold"],
            tags_field="interests",
            remove_tags_on_leave=True,
            created_by=alice,
        )
        export.segments.set([gold])
        assert run_now(export).status == "succeeded"
        Profile.objects.filter(customer_id="c3").update(
            attributes={"plan": "basic"}, updated_at=timezone.now()
        )
        segment_refresh(segment_id=gold.pk)

        left = run_now(Export.objects.get(pk=export.pk))

        assert (left.status, left.removed) == ("succeeded", 1)
        people = ortto.state()["accounts"][0]["people"]
        assert people["person3@example.com"]["tags"] == []
        assert people["person5@example.com"]["tags"] == ["gold", "golf", "sailing"]
