"""A segment's members: every one a page at a time, found by search, and a CSV with one column
per field (issue 23, item 7)."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from segments.importing import ProfileRecord, import_records
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def next_after(page: str) -> str:
    return page.split('rel="next" href="?after=')[1].split('"')[0]


def test_members_are_paged_past_the_preview_and_found_by_the_start_of_an_id_or_address(
    client, charlie
):
    for number in range(120):
        ProfileFactory(customer_id=f"c{number:03d}", email=f"person{number:03d}@example.com")
    segment = SegmentFactory()
    segment_refresh(segment_id=segment.pk)
    client.force_login(charlie)
    url = reverse("segments:members", args=[segment.pk])

    first = client.get(url).content.decode()
    assert "c000" in first and "c049" in first and "c050" not in first
    second = client.get(url, {"after": next_after(first)}).content.decode()
    assert "c050" in second and "c099" in second and "c049" not in second
    third = client.get(url, {"after": next_after(second)}).content.decode()
    assert "c119" in third and 'rel="next"' not in third

    found = client.get(url, {"q": "PERSON07"}).content.decode()
    assert "c070" in found and "c079" in found and "c080" not in found
    assert "No member" in client.get(url, {"q": "nobody"}).content.decode()


def test_the_members_csv_has_a_column_for_each_field(client, charlie):
    import_records(
        [
            ProfileRecord(2, "a1", "ann@example.com", "Ann", "Lee", {"city": "Oslo", "vip": True}),
            ProfileRecord(3, "b2", "bo@example.com", "Bo", "", {"tags": ["x", "y"]}),
        ],
        {"city": "text", "vip": "boolean", "tags": "text"},
    )
    segment = SegmentFactory()
    segment_refresh(segment_id=segment.pk)
    client.force_login(charlie)
    response = client.get(reverse("segments:members_csv", args=[segment.pk]))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["customer_id", "email", "first_name", "last_name", "city", "tags", "vip"]
    assert rows[1] == ["a1", "ann@example.com", "Ann", "Lee", "Oslo", "", "true"]
    assert rows[2] == ["b2", "bo@example.com", "Bo", "", "", '["x", "y"]', ""]
