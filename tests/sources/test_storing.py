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
