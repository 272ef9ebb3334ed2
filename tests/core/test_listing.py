"""Sorting and searching a list (core/listing.py): only the keys a list offers, bounded search."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.listing import MAX_QUERY_LENGTH, MAX_QUERY_WORDS, Sorting, search_query, search_words
from segments.models import Segment
from tests.factories import SegmentFactory

SORTING = Sorting(
    keys={"name": ("name",), "refreshed": ("last_refreshed_at",), "members": ("member_count",)},
    default="name",
    nullable=frozenset({"last_refreshed_at"}),
)


@pytest.mark.parametrize(
    ("asked", "used"),
    [
        ("name", "name"),
        ("-members", "-members"),
        (" refreshed ", "refreshed"),
        ("", "name"),
        (None, "name"),
        ("password", "name"),
        ("-rules", "name"),
        ("--name", "name"),
        ("name; drop table", "name"),
    ],
)
def test_it_accepts_only_the_sort_keys_a_list_offers(asked, used):
    assert SORTING.parse(asked) == used


def test_it_bounds_what_is_searched():
    assert search_query("  lots   of   space  ") == "lots of space"
    assert len(search_query("x" * 5000)) == MAX_QUERY_LENGTH
    assert len(search_query(" ".join(["word"] * 50)).split()) == MAX_QUERY_WORDS
    assert search_query(None) == ""


def test_a_word_typed_twice_is_searched_once():
    assert search_words("gold Gold gold") == ["gold", "Gold"]


@pytest.mark.django_db
def test_it_orders_both_ways_with_empty_values_last_and_ties_broken_by_id():
    now = timezone.now()
    never = SegmentFactory(name="Never refreshed")
    old = SegmentFactory(name="Old", last_refreshed_at=now - dt.timedelta(days=2))
    new = SegmentFactory(name="New", last_refreshed_at=now)
    twin_a = SegmentFactory(name="Twin A", member_count=5)
    twin_b = SegmentFactory(name="Twin B", member_count=5)
    segments = Segment.objects.filter(pk__in=[never.pk, old.pk, new.pk])

    assert list(SORTING.apply(segments, "refreshed")) == [old, new, never]
    assert list(SORTING.apply(segments, "-refreshed")) == [new, old, never]
    twins = Segment.objects.filter(pk__in=[twin_a.pk, twin_b.pk])
    assert list(SORTING.apply(twins, "members")) == [twin_a, twin_b]
    assert list(SORTING.apply(twins, "-members")) == [twin_b, twin_a]
    assert list(SORTING.apply(twins, "anything else")) == [twin_a, twin_b]
