"""The log of changed profiles that the database's triggers keep (``segments.changes``)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from segments import changes
from segments.models import Profile, ProfileChange, SegmentMember
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the log's triggers are PostgreSQL's"
    ),
]


def changed_since(seen: changes.Seen) -> list[int | None]:
    sql, params = changes.changed_since_sql(seen)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT profile_id FROM ({sql}) c ORDER BY 1", params)
        return [profile_id for (profile_id,) in cursor.fetchall()]


def seen_now() -> changes.Seen:
    with transaction.atomic():
        return changes.seen_now()


def test_an_update_and_a_deletion_of_profiles_are_logged():
    kept, gone = ProfileFactory(customer_id="kept"), ProfileFactory(customer_id="gone")
    ids = sorted([kept.pk, gone.pk])
    seen = seen_now()

    kept.first_name = "Changed"
    kept.save()
    gone.delete()

    assert changed_since(seen) == ids


def test_a_change_made_in_sql_is_logged():
    profile = ProfileFactory(customer_id="by-hand")
    seen = seen_now()

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE segments_profile SET first_name = 'Hand' WHERE id = %s", [profile.pk]
        )

    assert changed_since(seen) == [profile.pk]


def test_a_new_profile_is_logged_once_it_joins_a_segment():
    segment = SegmentFactory()
    seen = seen_now()

    profile = ProfileFactory(customer_id="new", email="new@example.com")
    assert changed_since(seen) == []

    segment_refresh(segment_id=segment.pk)
    assert changed_since(seen) == [profile.pk]


def test_a_membership_written_in_sql_is_logged_with_its_old_profile():
    segment = SegmentFactory()
    first, second = ProfileFactory(customer_id="first"), ProfileFactory(customer_id="second")
    SegmentMember.objects.create(segment=segment, profile=first)
    seen = seen_now()

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE segments_segmentmember SET profile_id = %s WHERE profile_id = %s",
            [second.pk, first.pk],
        )

    assert changed_since(seen) == sorted([first.pk, second.pk])


def test_a_statement_over_too_many_rows_logs_that_any_profile_may_have_changed():
    segment = SegmentFactory()
    seen = seen_now()

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO segments_segmentmember (segment_id, profile_id)"
            " SELECT %s, g FROM generate_series(1, 100001) g",
            [segment.pk],
        )

    assert changed_since(seen) == [None]
    assert ProfileChange.objects.filter(pk__gt=seen.last_id).count() == 1


def test_emptying_the_profiles_logs_that_any_profile_may_have_changed():
    ProfileFactory()
    seen = seen_now()

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE segments_profile CASCADE")

    assert None in changed_since(seen)


@pytest.mark.django_db(transaction=True)
def test_what_was_written_before_a_reader_saw_it_is_not_a_change_since():
    profile = ProfileFactory(customer_id="before")
    profile.first_name = "Changed"
    profile.save()

    seen = seen_now()

    assert changed_since(seen) == []


@pytest.mark.django_db(transaction=True)
def test_changes_are_forgotten_once_every_reader_saw_them():
    profile = ProfileFactory(customer_id="forgotten")
    seen = seen_now()
    profile.first_name = "Changed"
    profile.save()

    changes.forget_seen(lambda: [seen])  # forgets only what a flush before may have left
    assert changed_since(seen) == [profile.pk]

    # Nobody left to ask (a flush before this test may have left rows too).
    assert changes.forget_seen(lambda: []) >= 1
    assert not ProfileChange.objects.exists()
    assert Profile.objects.filter(pk=profile.pk).exists()
