"""Admin > System > Schedule: time zones with their UTC offsets, the next three refreshes, and
a "last changed" line that reads right (issue 23, item 14)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from exports.forms import time_zone_choices
from exports.schedule import schedule_save

pytestmark = pytest.mark.django_db


def test_each_time_zone_is_offered_by_name_with_its_offset_from_utc_that_day():
    winter = dict(time_zone_choices(dt.datetime(2026, 12, 7, tzinfo=dt.UTC)))
    summer = dict(time_zone_choices(dt.datetime(2026, 7, 7, tzinfo=dt.UTC)))
    assert winter["Europe/Oslo"] == "Europe/Oslo (UTC+01:00)"
    assert summer["Europe/Oslo"] == "Europe/Oslo (UTC+02:00)"
    assert winter["America/St_Johns"] == "America/St_Johns (UTC-03:30)"
    assert winter["UTC"] == "UTC (UTC+00:00)"


def test_the_page_shows_the_next_three_refreshes_in_the_schedules_time_zone(client, alice):
    schedule_save(
        enabled=True,
        frequency="daily",
        weekdays=[],
        time_zone="Asia/Tokyo",
        times=["06:00", "18:00"],
        user=alice,
    )
    client.force_login(alice)
    page = client.get(reverse("system:schedule")).content.decode()
    listed = page.split('<ul class="plain" id="upcoming-refreshes">')[1].split("</ul>")[0]
    assert listed.count("<li>") == 3
    assert listed.count(", 06:00<") + listed.count(", 18:00<") == 3
    assert "Asia/Tokyo" in listed
    assert "Last changed " in page and " by alice." in page
