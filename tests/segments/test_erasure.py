"""Erasing profiles (``segments.services.profiles_erase``): memberships and member counts at
once, in one transaction, and an audit entry that names nobody."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from segments.models import Profile, Segment, SegmentMember
from segments.services import profiles_erase, segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def segments():
    everyone = SegmentFactory(name="Everyone")
    gold = SegmentFactory(
        name="Gold",
        rules={
            "match": "all",
            "conditions": [{"field": "first_name", "operator": "equals", "value": "Gold"}],
        },
    )
    return everyone, gold


def test_erasing_lowers_each_segments_member_count_at_once(segments):
    everyone, gold = segments
    erased = ProfileFactory(first_name="Gold", email="erase.me@example.com")
    ProfileFactory(first_name="Gold")
    ProfileFactory(first_name="Silver")
    for segment in segments:
        segment_refresh(segment_id=segment.pk)
    versions = dict(Segment.objects.values_list("pk", "members_version"))

    result = profiles_erase(profile_ids=[erased.pk], erasure_id=7)

    assert (result.profiles, result.memberships) == (1, 2)
    counts = dict(Segment.objects.values_list("pk", "member_count"))
    assert (counts[everyone.pk], counts[gold.pk]) == (2, 1)
    assert SegmentMember.objects.filter(segment=gold).count() == 1
    assert not Profile.objects.filter(pk=erased.pk).exists()
    assert all(
        version == versions[pk] + 1
        for pk, version in Segment.objects.values_list("pk", "members_version")
    )


def test_the_counts_match_what_the_next_refresh_finds(segments):
    everyone, _gold = segments
    people = [ProfileFactory() for _ in range(3)]
    segment_refresh(segment_id=everyone.pk)

    profiles_erase(profile_ids=[people[0].pk], erasure_id=1)
    before = Segment.objects.get(pk=everyone.pk).member_count

    assert before == segment_refresh(segment_id=everyone.pk).member_count == 2


def test_an_audit_entry_records_the_numbers_and_no_one_by_name(segments):
    everyone, gold = segments
    erased = ProfileFactory(first_name="Gold", email="erase.me@example.com", customer_id="c-77")
    for segment in segments:
        segment_refresh(segment_id=segment.pk)

    profiles_erase(profile_ids=[erased.pk], erasure_id=12)

    entry = AuditEntry.objects.get(action="profile.erased")
    assert (entry.object_type, entry.object_id, entry.object_label) == (
        "erasure",
        "12",
        "erasure 12",
    )
    assert entry.after == {
        "profiles_erased": 1,
        "memberships_erased": 2,
        "segments": {str(everyone.pk): 1, str(gold.pk): 1},
    }
    assert "erase.me" not in str(entry.after) and "c-77" not in str(entry.after)


def test_a_failure_leaves_profiles_memberships_and_counts_as_they_were(segments, monkeypatch):
    everyone, _gold = segments
    erased = ProfileFactory()
    segment_refresh(segment_id=everyone.pk)

    def refuse(*args, **kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr("segments.services.audit.record", refuse)
    with pytest.raises(RuntimeError):
        profiles_erase(profile_ids=[erased.pk], erasure_id=3)

    assert Profile.objects.filter(pk=erased.pk).exists()
    assert SegmentMember.objects.filter(segment=everyone).count() == 1
    assert Segment.objects.get(pk=everyone.pk).member_count == 1
