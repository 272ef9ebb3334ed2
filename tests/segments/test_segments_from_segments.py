"""Segments built from segments: membership rules, union / intersection / difference, order,
cycles and removal; activating, deactivating, static segments."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from segments.dependencies import refresh_order
from segments.models import ProfileField, Segment, SegmentMember
from segments.rules import RuleError, validate
from segments.services import (
    SegmentInUse,
    segment_delete,
    segment_refresh,
    segment_save,
    segment_set_active,
    segment_set_static,
    segments_refresh_in_order,
)
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def members(segment: Segment) -> set[str]:
    return set(
        SegmentMember.objects.filter(segment=segment).values_list("profile__customer_id", flat=True)
    )


def where(field: str, value: str) -> dict:
    return {"match": "all", "conditions": [{"field": field, "operator": "equals", "value": value}]}


def combine(how: str, *segments: Segment) -> dict:
    return {"combine": how, "segments": [s.pk for s in segments]}


def save(name: str, rules: dict, segment: Segment | None = None) -> Segment:
    return segment_save(segment=segment, name=name, description="", rules=rules, user=None)


@pytest.fixture
def world():
    ProfileField.objects.create(name="country", data_type="text")
    ProfileField.objects.create(name="tier", data_type="text")
    for customer_id, country, tier in [
        ("ann", "Norway", "vip"),
        ("bo", "Norway", "basic"),
        ("cy", "France", "vip"),
        ("dag", "Spain", "vip"),
        ("eli", "France", "basic"),
    ]:
        ProfileFactory(customer_id=customer_id, attributes={"country": country, "tier": tier})
    vip = save("VIP", where("tier", "vip"))
    norway = save("Norway", where("country", "Norway"))
    france = save("France", where("country", "France"))
    segments_refresh_in_order()
    return vip, norway, france


def test_union_intersection_and_difference_combine_members(world):
    vip, norway, france = world
    union = save("Norway or France", combine("union", norway, france))
    both = save("Norwegian VIPs", combine("intersection", vip, norway))
    vip_not_norway = save("VIPs outside Norway", combine("difference", vip, norway))
    vip_elsewhere = save("VIPs elsewhere", combine("difference", vip, norway, france))
    segments_refresh_in_order()
    assert members(union) == {"ann", "bo", "cy", "eli"}
    assert members(both) == {"ann"}
    assert members(vip_not_norway) == {"cy", "dag"}
    assert members(vip_elsewhere) == {"dag"}


def test_member_of_and_not_member_of_conditions_mix_with_field_conditions(world):
    vip, norway, _france = world
    rules = {
        "match": "all",
        "conditions": [
            {"segment": vip.pk, "operator": "member_of"},
            {"segment": norway.pk, "operator": "not_member_of"},
            {"field": "country", "operator": "not_equals", "value": "Spain"},
        ],
    }
    segment = save("French-ish VIPs", rules)
    assert members(segment_refresh(segment_id=segment.pk)) == {"cy"}


def test_nested_combinations_refresh_in_dependency_order(world):
    vip, norway, france = world
    # Created in the "wrong" order: the outer segment has the lower id.
    outer = save("Outer", where("tier", "vip"))
    inner = save("Inner", combine("union", norway, france))
    save("Outer", combine("difference", vip, inner), segment=outer)
    assert refresh_order([outer.pk, inner.pk, vip.pk, norway.pk, france.pk]).index(
        inner.pk
    ) < refresh_order([outer.pk, inner.pk, vip.pk, norway.pk, france.pk]).index(outer.pk)

    refreshed = [segment.pk for segment in segments_refresh_in_order()]
    assert refreshed.index(inner.pk) < refreshed.index(outer.pk)
    assert members(outer) == {"dag"}


def test_a_cycle_is_refused_at_save_with_the_path(world):
    vip, norway, _france = world
    a = save("A", combine("union", vip, norway))
    b = save("B", {"match": "all", "conditions": [{"segment": a.pk, "operator": "member_of"}]})
    with pytest.raises(RuleError, match=r"cannot use itself.*“A” → “B” → “A”"):
        save("A", combine("union", vip, b), segment=a)
    with pytest.raises(RuleError, match="cannot use itself"):
        validate(combine("union", a, vip), for_segment=a.pk)


def test_the_builder_refuses_a_cycle_and_says_why(world, as_bob):
    vip, norway, _france = world
    a = save("A", combine("union", vip, norway))
    response = as_bob.post(
        reverse("segments:edit", args=[a.pk]),
        {"name": "A", "rules": json.dumps(combine("union", a, vip))},
    )
    assert "A segment cannot use itself" in response.content.decode()


def test_combinations_need_two_existing_segments(world):
    vip, _norway, _france = world
    with pytest.raises(RuleError, match="at least two"):
        validate({"combine": "union", "segments": [vip.pk]})
    with pytest.raises(RuleError, match="no longer exists"):
        validate({"combine": "union", "segments": [vip.pk, 999_999]})


def test_removing_a_segment_that_others_use_is_refused_naming_them(world, as_bob):
    vip, norway, _france = world
    save("Norwegian VIPs", combine("intersection", vip, norway))
    with pytest.raises(SegmentInUse, match="“Norwegian VIPs” use it"):
        segment_delete(segment=vip)
    response = as_bob.post(reverse("segments:delete", args=[vip.pk]))
    assert "Norwegian VIPs" in response.content.decode()
    assert Segment.objects.filter(pk=vip.pk).exists()


def test_an_inactive_segment_is_not_refreshed_until_activated(world):
    vip, _norway, _france = world
    segment_set_active(segment=vip, active=False)
    ProfileFactory(customer_id="fay", attributes={"tier": "vip"})
    assert vip.pk not in [s.pk for s in segments_refresh_in_order()]
    assert segment_refresh(segment_id=vip.pk).member_count == 3

    segment_set_active(segment=vip, active=True)
    assert segment_refresh(segment_id=vip.pk).member_count == 4


def test_a_static_segment_keeps_its_members_until_made_dynamic(world):
    vip, _norway, _france = world
    segment_set_static(segment=vip, static=True)
    ProfileFactory(customer_id="fay", attributes={"tier": "vip"})
    assert members(segment_refresh(segment_id=vip.pk)) == {"ann", "cy", "dag"}
    segment_set_static(segment=vip, static=False)
    assert members(segment_refresh(segment_id=vip.pk)) == {"ann", "cy", "dag", "fay"}


def test_the_buttons_deactivate_and_make_static(world, as_bob):
    vip, _norway, _france = world
    as_bob.post(reverse("segments:set_active", args=[vip.pk]), {"active": "0"})
    as_bob.post(reverse("segments:set_static", args=[vip.pk]), {"static": "1"})
    vip.refresh_from_db()
    assert (vip.is_active, vip.is_static, vip.status) == (False, True, Segment.Status.INACTIVE)
    page = as_bob.get(reverse("segments:detail", args=[vip.pk])).content.decode()
    assert "Activate" in page and "Make dynamic" in page


def test_the_refresh_command_refreshes_in_dependency_order_and_leaves_inactive_ones(world):
    from io import StringIO

    from django.core.management import call_command

    vip, norway, france = world
    outer = save("Outer", where("tier", "vip"))
    inner = save("Inner", combine("union", norway, france))
    save("Outer", combine("difference", vip, inner), segment=outer)
    segment_set_active(segment=france, active=False)
    output = StringIO()
    call_command("refresh_segments", stdout=output)
    lines = output.getvalue().splitlines()
    names = [line.split(":")[0] for line in lines]
    assert names.index("Inner") < names.index("Outer")
    assert "France: left alone (inactive)" in lines
    assert "Outer: 1 members" in output.getvalue()
