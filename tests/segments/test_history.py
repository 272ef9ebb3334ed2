"""Member-count history, its chart, and the refresh that does nothing when nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from segments.models import Profile, ProfileField, Segment, SegmentMember, SegmentRefresh
from segments.services import segment_refresh, segment_save
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db

OSLO = {"match": "all", "conditions": [{"field": "city", "operator": "equals", "value": "Oslo"}]}


@pytest.fixture
def oslo():
    ProfileField.objects.create(name="city", data_type="text")
    return SegmentFactory(name="Oslo", rules=OSLO)


def history(segment: Segment) -> list[tuple[int, int, int, bool]]:
    return list(
        segment.refreshes.order_by("id").values_list("member_count", "joined", "left", "unchanged")
    )


def member_writes(queries) -> list[str]:
    table = SegmentMember._meta.db_table
    return [
        q["sql"]
        for q in queries
        if table in q["sql"] and q["sql"].lstrip().upper().startswith(("INSERT", "DELETE"))
    ]


def test_every_refresh_records_the_count_and_who_joined_and_left(oslo):
    ann = ProfileFactory(attributes={"city": "Oslo"})
    ProfileFactory(attributes={"city": "Oslo"})
    segment_refresh(segment_id=oslo.pk)
    ann.attributes = {"city": "Bergen"}
    ann.save()
    ProfileFactory(attributes={"city": "Oslo"})
    ProfileFactory(attributes={"city": "Oslo"})
    segment_refresh(segment_id=oslo.pk)
    segment_refresh(segment_id=oslo.pk)
    assert history(oslo) == [(2, 2, 0, False), (3, 2, 1, False), (3, 0, 0, True)]


def test_a_refresh_with_nothing_changed_writes_no_member_and_says_unchanged(oslo):
    for _ in range(3):
        ProfileFactory(attributes={"city": "Oslo"})
    segment_refresh(segment_id=oslo.pk)
    with CaptureQueriesContext(connection) as changed_nothing:
        refreshed = segment_refresh(segment_id=oslo.pk)
    assert member_writes(changed_nothing.captured_queries) == []
    # Read the segment, mark it running, savepoint, fields, segment ids, time zone, profiles'
    # fingerprint, release, history row, save, and the segment.refreshed announcement (the
    # webhooks receiver reads the segment and its subscribers): all small, none over the members.
    assert len(changed_nothing.captured_queries) <= 12
    assert (refreshed.member_count, history(oslo)[-1]) == (3, (3, 0, 0, True))

    ProfileFactory(attributes={"city": "Oslo"})
    with CaptureQueriesContext(connection) as changed_one:
        assert segment_refresh(segment_id=oslo.pk).member_count == 4
    assert len(member_writes(changed_one.captured_queries)) == 2


@pytest.mark.parametrize(
    "change",
    [
        "profile edited",
        "profile removed",
        "rules changed",
        "used segment changed",
    ],
)
def test_each_input_that_changes_makes_the_refresh_do_the_work(oslo, change):
    ann = ProfileFactory(attributes={"city": "Oslo"})
    ProfileFactory(attributes={"city": "Oslo"})
    ProfileFactory(attributes={"city": "Paris"})
    user = segment_save(
        segment=None,
        name="Oslo members",
        description="",
        rules={"match": "all", "conditions": [{"segment": oslo.pk, "operator": "member_of"}]},
        user=None,
    )
    segment_refresh(segment_id=oslo.pk)
    segment_refresh(segment_id=user.pk)
    watched = user if change == "used segment changed" else oslo
    if change == "profile edited":
        Profile.objects.filter(pk=ann.pk).update(
            attributes={"city": "Paris"}, updated_at=datetime(2030, 1, 1, tzinfo=UTC)
        )
    elif change == "profile removed":
        ann.delete()
    elif change == "rules changed":
        oslo.rules = {**OSLO, "conditions": [{**OSLO["conditions"][0], "value": "Paris"}]}
        oslo.save()
    else:
        ann.attributes = {"city": "Paris"}
        ann.save()
        segment_refresh(segment_id=oslo.pk)
    refreshed = segment_refresh(segment_id=watched.pk)
    assert history(watched)[-1][3] is False
    assert refreshed.member_count == 1


def test_a_relative_date_rule_is_worked_out_again_on_a_new_day(oslo):
    ProfileField.objects.create(name="signed_up", data_type="date")
    ProfileFactory(attributes={"signed_up": "2026-03-01"})
    recent = SegmentFactory(
        rules={
            "match": "all",
            "conditions": [{"field": "signed_up", "operator": "in_last_days", "value": 3}],
        }
    )
    first_day = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert segment_refresh(segment_id=recent.pk, now=first_day).member_count == 1
    segment_refresh(segment_id=recent.pk, now=first_day.replace(hour=13))
    later = segment_refresh(segment_id=recent.pk, now=datetime(2026, 3, 9, 12, tzinfo=UTC))
    assert later.member_count == 0
    assert [row[3] for row in history(recent)] == [False, True, False]


def test_the_segment_page_charts_the_history_and_the_list_shows_a_sparkline(oslo, as_charlie):
    for count in (1, 2, 4):
        while Profile.objects.count() < count:
            ProfileFactory(attributes={"city": "Oslo"})
        segment_refresh(segment_id=oslo.pk)
    page = as_charlie.get(reverse("segments:detail", args=[oslo.pk])).content.decode()
    assert '<svg class="history-chart"' in page
    assert "Members after each of the last 3 refreshes: from 1" in page
    assert "to 4 on" in page
    assert page.count("<circle") == 3
    listing = as_charlie.get(reverse("segments:list")).content.decode()
    assert "Members after the last 3 refreshes: 1, 2, 4" in listing


def test_the_history_of_a_removed_segment_goes_with_it(oslo):
    ProfileFactory(attributes={"city": "Oslo"})
    segment_refresh(segment_id=oslo.pk)
    oslo.delete()
    assert not SegmentRefresh.objects.exists()


def test_a_combination_notices_a_removed_profile(oslo):
    ann = ProfileFactory(attributes={"city": "Oslo"})
    ProfileFactory(attributes={"city": "Oslo"})
    everyone = SegmentFactory(name="Everyone")
    both = segment_save(
        segment=None,
        name="Both",
        description="",
        rules={"combine": "intersection", "segments": [oslo.pk, everyone.pk]},
        user=None,
    )
    for segment in (oslo, everyone, both):
        segment_refresh(segment_id=segment.pk)
    ann.delete()
    assert segment_refresh(segment_id=both.pk).member_count == 1
