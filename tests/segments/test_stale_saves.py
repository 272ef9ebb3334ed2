"""A segment read before a refresh and saved after it keeps what the refresh wrote: saves write
only the fields they change."""

from __future__ import annotations

import pytest

from segments.models import ProfileField, Segment
from segments.services import segment_refresh, segment_save, segment_set_active
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db

OSLO = {"match": "all", "conditions": [{"field": "city", "operator": "equals", "value": "Oslo"}]}


@pytest.fixture
def read_before_a_refresh():
    """The segment as a form, the API or an admin page read it, and a refresh after that read
    which found two members."""
    ProfileField.objects.create(name="city", data_type="text")
    segment = SegmentFactory(name="Oslo", rules=OSLO)
    segment_refresh(segment_id=segment.pk)
    held = Segment.objects.get(pk=segment.pk)
    ProfileFactory(attributes={"city": "Oslo"})
    ProfileFactory(attributes={"city": "Oslo"})
    refreshed = segment_refresh(segment_id=segment.pk)
    assert (refreshed.member_count, refreshed.members_version) == (2, held.members_version + 1)
    return held


def refreshed_fields(segment_id: int) -> tuple:
    return tuple(
        Segment.objects.filter(pk=segment_id)
        .values_list("member_count", "members_version", "inputs_fingerprint", "last_refreshed_at")
        .get()
    )


def test_saving_a_segment_read_before_a_refresh_keeps_the_refreshed_members(
    read_before_a_refresh, django_user_model
):
    held = read_before_a_refresh
    after_refresh = refreshed_fields(held.pk)
    user = django_user_model.objects.create_user("alice")
    segment_save(
        segment=held, name="Oslo people", description="Lives in Oslo", rules=OSLO, user=user
    )
    assert refreshed_fields(held.pk) == after_refresh
    saved = Segment.objects.get(pk=held.pk)
    assert (saved.name, saved.description, saved.member_count) == (
        "Oslo people",
        "Lives in Oslo",
        2,
    )


def test_deactivating_a_segment_read_before_a_refresh_keeps_the_refreshed_members(
    read_before_a_refresh,
):
    held = read_before_a_refresh
    after_refresh = refreshed_fields(held.pk)
    segment_set_active(segment=held, active=False)
    assert refreshed_fields(held.pk) == after_refresh
    saved = Segment.objects.get(pk=held.pk)
    assert (saved.is_active, saved.status) == (False, Segment.Status.INACTIVE)


def test_activating_a_segment_read_before_a_refresh_keeps_the_refreshed_status(
    read_before_a_refresh, django_capture_on_commit_callbacks
):
    held = read_before_a_refresh
    Segment.objects.filter(pk=held.pk).update(is_active=False)
    held.is_active, held.status = False, Segment.Status.FAILED  # as read: an old failure
    with django_capture_on_commit_callbacks(execute=False):
        segment_set_active(segment=held, active=True)
    saved = Segment.objects.get(pk=held.pk)
    assert (saved.is_active, saved.status, saved.member_count) == (True, "active", 2)
    assert saved.inputs_fingerprint == ""  # the next refresh reads everything again
