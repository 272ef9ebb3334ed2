"""A source's new profiles inserted apart before the import's upsert (``sources.storing``)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from segments import staging
from segments.models import Profile
from segments.staging import StagedRows
from sources import storing

pytestmark = pytest.mark.django_db


def staged(*customer_ids: str) -> StagedRows:
    count = len(customer_ids)
    return StagedRows(
        list(range(1, count + 1)),
        list(customer_ids),
        [f"{cid}@example.com" for cid in customer_ids],
        ["First"] * count,
        ["Last"] * count,
        [['"score": 1'] * count],
    )


def staged_ids(cursor) -> list[str]:
    cursor.execute(f"SELECT customer_id FROM {staging.STAGING_TABLE} ORDER BY line_no")
    return [row[0] for row in cursor.fetchall()]


def test_the_rows_without_a_profile_are_inserted_stamped_and_taken_out():
    Profile.objects.create(customer_id="old", email="old@example.com")
    created: list[int] = []
    stamp = storing.origin_stamp(7, ["customer_id", "email"], ["score"])
    with transaction.atomic(), connection.cursor() as cursor:
        staging.stage_rows(cursor, [staged("old", "new")])
        storing.insert_new_profiles(stamp, created, cursor)
        assert staged_ids(cursor) == ["old"]  # left for the upsert to compare
        staging.drop_staging(cursor)
    assert created == [1]
    new = Profile.objects.get(customer_id="new")
    assert (new.email, new.attributes, new.field_origins) == (
        "new@example.com",
        {"score": 1},
        {"email": 7, "score": 7},
    )


def test_a_profile_made_meanwhile_leaves_every_row_to_the_upsert():
    # Two rows of one new id stand for a profile another writer inserts meanwhile: the unique
    # customer id refuses the insert.
    created: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        staging.stage_rows(cursor, [staged("same", "same")])
        storing.insert_new_profiles("{}", created, cursor)
        assert staged_ids(cursor) == ["same", "same"]
        staging.drop_staging(cursor)
    assert created == [] and not Profile.objects.exists()


def ids_kept(kept: list[list[str]]):
    """A ``remember_keys`` that keeps the ids it is given, and accepts them."""

    def remember(customer_ids, cursor):
        kept.append(list(customer_ids))
        return True

    return remember


def test_a_batch_of_new_ids_is_copied_into_the_profiles_stamped_with_its_ids_remembered():
    remembered: list[list[str]] = []
    stamp = storing.origin_stamp(7, ["customer_id", "email"], ["score"])
    with transaction.atomic():
        assert storing.copy_new_profiles(stamp, staged("a", "b"), ids_kept(remembered))
    assert remembered == [["a", "b"]]
    new = Profile.objects.get(customer_id="b")
    assert (new.email, new.first_name, new.attributes, new.field_origins) == (
        "b@example.com",
        "First",
        {"score": 1},
        {"email": 7, "score": 7},
    )


def test_a_batch_with_a_profile_already_there_copies_nothing():
    Profile.objects.create(customer_id="old", email="kept@example.com")
    remembered: list[list[str]] = []
    with transaction.atomic():
        assert not storing.copy_new_profiles("{}", staged("new", "old"), ids_kept(remembered))
    assert remembered == []
    assert list(Profile.objects.values_list("customer_id", "email")) == [
        ("old", "kept@example.com")
    ]


def test_a_batch_whose_ids_the_run_read_before_copies_nothing():
    with transaction.atomic():
        assert not storing.copy_new_profiles("{}", staged("a"), lambda ids, cursor: False)
    assert not Profile.objects.exists()


def test_values_that_need_an_escape_are_copied_as_they_are():
    rows = staged("tab\there", "back\\slash")
    rows.first_names = ["line\nbreak", "return\rhere"]
    rows.attribute_entries = [['"note": "a\\\\b"', '"note": "\\t"']]
    stamp = storing.origin_stamp(7, ["first_name"], ['we"ird\\name'])
    with transaction.atomic():
        assert storing.copy_new_profiles(stamp, rows, ids_kept([]))
    first = Profile.objects.get(customer_id="tab\there")
    second = Profile.objects.get(customer_id="back\\slash")
    assert (first.first_name, first.attributes) == ("line\nbreak", {"note": "a\\b"})
    assert (second.first_name, second.attributes) == ("return\rhere", {"note": "\t"})
    assert first.field_origins == {"first_name": 7, 'we"ird\\name': 7}


def test_a_row_without_a_value_for_an_attribute_is_copied_without_it():
    rows = staged("a", "b")
    rows.attribute_entries = [['"score": 1', ""], ['"city": "Oslo"', '"city": "Rome"']]
    rows.gaps = True
    with transaction.atomic():
        assert storing.copy_new_profiles("{}", rows, ids_kept([]))
    assert dict(Profile.objects.values_list("customer_id", "attributes")) == {
        "a": {"score": 1, "city": "Oslo"},
        "b": {"city": "Rome"},
    }
