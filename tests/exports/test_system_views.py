"""Admin > System: the Schedule tab and the Status tab."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from exports.models import ExportRun, RefreshSchedule

pytestmark = pytest.mark.django_db

URL = "/system/schedule/"


def page(response) -> str:
    return response.content.decode()


def test_an_administrator_saves_a_weekly_schedule_and_the_beat_entries_follow(as_alice, alice):
    response = as_alice.post(
        reverse("system:schedule"),
        {
            "enabled": "on",
            "frequency": "weekly",
            "weekdays": ["1", "5"],
            "time_zone": "Europe/Oslo",
            "times": ["18:00", "06:30", ""],
        },
        follow=True,
    )
    assert "Schedule saved" in page(response)
    schedule = RefreshSchedule.load()
    assert (schedule.enabled, schedule.frequency, schedule.weekdays) == (True, "weekly", [1, 5])
    assert (schedule.time_zone, schedule.times, schedule.updated_by) == (
        "Europe/Oslo",
        ["06:30", "18:00"],
        alice,
    )
    entries = PeriodicTask.objects.filter(name__startswith="Scheduled refresh").order_by("name")
    assert [(e.crontab.hour, e.crontab.minute, e.crontab.day_of_week) for e in entries] == [
        ("6", "30", "1,5"),
        ("18", "0", "1,5"),
    ]


def test_the_schedule_form_explains_what_is_missing(as_alice):
    html = page(
        as_alice.post(
            reverse("system:schedule"),
            {"enabled": "on", "frequency": "weekly", "time_zone": "UTC", "times": [""]},
        )
    )
    assert "Pick at least one day for a weekly schedule." in html
    assert "Give at least one time" in html
    assert not PeriodicTask.objects.filter(name__startswith="Scheduled refresh").exists()


def test_a_time_that_is_not_a_time_and_an_unknown_time_zone_are_refused(as_alice):
    html = page(
        as_alice.post(
            reverse("system:schedule"),
            {
                "enabled": "on",
                "frequency": "daily",
                "time_zone": "Mars/Olympus",
                "times": ["25:99"],
            },
        )
    )
    assert "“25:99” is not a time" in html
    assert "Choose a time zone from the list" in html
    assert not RefreshSchedule.load().enabled


def test_add_another_time_keeps_the_choices_and_adds_an_empty_time_up_to_four(as_alice):
    data = {"enabled": "on", "frequency": "daily", "time_zone": "Asia/Tokyo", "add_time": "1"}
    html = page(as_alice.post(reverse("system:schedule"), {**data, "times": ["06:00"]}))
    assert html.count('type="time"') == 2
    assert 'value="06:00"' in html and 'Asia/Tokyo" selected' in html
    assert "Add another time" in html
    assert not RefreshSchedule.load().enabled  # nothing saved

    html = page(
        as_alice.post(reverse("system:schedule"), {**data, "times": ["06:00", "09:00", "12:00"]})
    )
    assert html.count('type="time"') == 4
    assert "Add another time" not in html


def test_the_time_zones_are_sorted_and_complete(as_alice):
    html = page(as_alice.get(reverse("system:schedule")))
    assert (
        html.index('value="Africa/Abidjan"')
        < html.index('value="America/New_York"')
        < html.index('value="UTC"')
    )
    assert "Daily" in html and "Weekly" in html and "Time zone" in html


def test_contributors_and_viewers_see_the_schedule_but_cannot_change_it(as_bob, client, charlie):
    html = page(as_bob.get(reverse("system:schedule")))
    assert "Only administrators can change the schedule" in html
    assert '<fieldset class="card choices" disabled>' in html and "Add another time" not in html
    response = as_bob.post(
        reverse("system:schedule"),
        {"enabled": "on", "frequency": "daily", "time_zone": "UTC", "times": ["06:00"]},
    )
    assert response.status_code == 403
    client.force_login(charlie)
    assert client.get(reverse("system:schedule")).status_code == 200
    assert client.post(reverse("system:schedule"), {"add_time": "1"}).status_code == 403
    assert not RefreshSchedule.load().enabled


def test_the_status_tab_lists_segment_refreshes_and_export_runs(as_charlie, make_export, everyone):
    export = make_export(everyone, display_name="Newsletter")
    ExportRun.objects.create(
        export=export,
        trigger="schedule",
        status="running",
        profiles_total=10,
        sent=5,
        started_at=timezone.now(),
    )
    html = page(as_charlie.get(reverse("system:status")))
    assert "Name" in html and "Status" in html and "Last updated" in html
    assert "Everyone" in html and "Segment refresh" in html
    assert "Newsletter" in html and "Export run" in html and "Running" in html
    assert 'hx-trigger="every 2s"' in html  # keeps itself current while something runs
    assert reverse("system:status_detail", args=["export", export.pk]) in html


def test_a_click_on_an_export_shows_its_recent_runs_and_progress(as_charlie, make_export, everyone):
    export = make_export(everyone, display_name="Newsletter")
    ExportRun.objects.create(export=export, trigger="schedule", status="failed", last_error="Gone.")
    ExportRun.objects.create(
        export=export,
        trigger="schedule",
        status="running",
        profiles_total=4,
        sent=1,
        started_at=timezone.now(),
    )
    url = reverse("system:status_detail", args=["export", export.pk])
    html = page(as_charlie.get(url, HTTP_HX_REQUEST="true"))
    assert "<html" not in html
    assert "Progress details" in html and 'aria-valuenow="25"' in html
    assert "Recent runs" in html and "Failed" in html
    assert 'hx-trigger="every 1s"' in html
    assert as_charlie.get(url).status_code == 200  # without htmx: a whole page


def test_a_click_on_a_segment_shows_its_refresh(as_charlie, make_export, everyone):
    make_export(everyone)
    html = page(as_charlie.get(reverse("system:status_detail", args=["segment", everyone.pk])))
    assert "Segment refresh: Everyone" in html and "Members" in html and "Active" in html


def test_an_unknown_kind_of_task_is_not_found(as_charlie):
    assert as_charlie.get(reverse("system:status_detail", args=["job", 1])).status_code == 404
