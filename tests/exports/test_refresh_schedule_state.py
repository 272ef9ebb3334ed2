"""Whether anything runs on schedule, said wherever an export's schedule shows, with the next
run's time."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import dateformat, timezone

from exports.models import RefreshSchedule
from exports.schedule import schedule_save
from exports.selectors import next_refreshes

pytestmark = pytest.mark.django_db
OSLO = zoneinfo.ZoneInfo("Europe/Oslo")
BANNER = "Nothing runs on schedule: the refresh schedule is off."


def schedule(**values) -> RefreshSchedule:
    fields = {
        "enabled": True,
        "frequency": "daily",
        "weekdays": [],
        "time_zone": "Europe/Oslo",
        "times": ["06:00", "18:30"],
        **values,
    }
    return schedule_save(user=None, **fields)


def test_the_next_refreshes_follow_the_times_of_the_day_in_the_schedules_time_zone():
    after = dt.datetime(2026, 12, 7, 12, 0, tzinfo=OSLO)  # a Monday, noon in Oslo
    assert next_refreshes(schedule(), after=after, count=3) == [
        dt.datetime(2026, 12, 7, 18, 30, tzinfo=OSLO),
        dt.datetime(2026, 12, 8, 6, 0, tzinfo=OSLO),
        dt.datetime(2026, 12, 8, 18, 30, tzinfo=OSLO),
    ]


def test_a_weekly_schedule_skips_to_its_next_weekday():
    after = dt.datetime(2026, 12, 7, 19, 0, tzinfo=OSLO)  # Monday evening
    weekly = schedule(frequency="weekly", weekdays=[5])  # Fridays
    assert next_refreshes(weekly, after=after) == [dt.datetime(2026, 12, 11, 6, 0, tzinfo=OSLO)]


def test_a_schedule_that_is_off_has_no_next_refresh():
    assert next_refreshes(schedule(enabled=False)) == []


def test_the_exports_page_says_when_nothing_runs_on_schedule_and_who_can_change_it(
    client, alice, bob, make_export, everyone
):
    make_export(everyone)
    client.force_login(alice)  # an administrator
    page = client.get(reverse("exports:list")).content.decode()
    assert BANNER in page
    assert reverse("system:schedule") in page
    assert "None: the refresh schedule is off" in page  # the export's next run

    client.force_login(bob)  # a contributor cannot open the schedule
    page = client.get(reverse("exports:list")).content.decode()
    assert BANNER in page
    assert "An administrator can set it under Admin > System > Schedule." in page


def test_with_the_schedule_on_each_scheduled_export_shows_its_next_run(
    client, alice, make_export, everyone
):
    export = make_export(everyone)
    upcoming = next_refreshes(schedule())[0]
    client.force_login(alice)
    for page in (reverse("exports:list"), reverse("exports:detail", args=[export.pk])):
        text = client.get(page).content.decode()
        assert BANNER not in text
        assert f'datetime="{dateformat.format(timezone.localtime(upcoming), "c")}"' in text


def test_make_demo_turns_the_schedule_on_once_and_never_overrides_an_administrator():
    call_command("set_refresh_schedule", "--times", "06:00", "--if-never-set")
    assert RefreshSchedule.load().enabled

    schedule(enabled=False)  # an administrator turned it off
    call_command("set_refresh_schedule", "--times", "06:00", "--if-never-set")
    assert not RefreshSchedule.load().enabled
