from __future__ import annotations

import pytest

from config.translation import shown
from segments.models import Segment, SegmentMember
from segments.services import segment_refresh, segment_request_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def members(segment: Segment) -> set[str]:
    return set(
        SegmentMember.objects.filter(segment=segment).values_list("profile__customer_id", flat=True)
    )


def test_a_refresh_adds_joiners_and_drops_leavers():
    oslo = ProfileFactory(customer_id="1", attributes={"city": "Oslo"})
    ProfileFactory(customer_id="2", attributes={"city": "Paris"})
    segment = SegmentFactory(
        rules={
            "match": "all",
            "conditions": [{"field": "city", "operator": "equals", "value": "Oslo"}],
        }
    )
    refreshed = segment_refresh(segment_id=segment.pk)
    assert (refreshed.status, refreshed.member_count, members(segment)) == (
        Segment.Status.ACTIVE,
        1,
        {"1"},
    )

    oslo.attributes = {"city": "Bergen"}
    oslo.save()
    ProfileFactory(customer_id="3", attributes={"city": "oslo"})
    refreshed = segment_refresh(segment_id=segment.pk)
    assert (refreshed.member_count, members(segment)) == (1, {"3"})
    assert refreshed.last_refreshed_at is not None


def test_a_refresh_that_fails_marks_the_segment_failed_with_the_reason():
    segment = SegmentFactory(rules={"match": "all", "conditions": [{"field": "x"}]})
    refreshed = segment_refresh(segment_id=segment.pk)
    assert refreshed.status == Segment.Status.FAILED
    assert "could not be refreshed" in shown(refreshed.last_error)
    assert refreshed.refresh_state == Segment.RefreshState.IDLE


def test_a_refresh_request_runs_the_task(django_capture_on_commit_callbacks):
    ProfileFactory()
    segment = SegmentFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert segment_request_refresh(segment=segment)
    segment.refresh_from_db()
    assert (segment.member_count, segment.refresh_state) == (1, Segment.RefreshState.IDLE)


def test_a_second_refresh_request_while_one_is_queued_is_not_queued_again():
    segment = SegmentFactory()
    Segment.objects.filter(pk=segment.pk).update(refresh_state=Segment.RefreshState.QUEUED)
    from django.utils import timezone

    Segment.objects.filter(pk=segment.pk).update(refresh_requested_at=timezone.now())
    assert not segment_request_refresh(segment=segment)
