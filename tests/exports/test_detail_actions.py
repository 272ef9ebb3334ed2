"""An export's page leads with Run; the other actions wait under one More menu, and the
schedule is a switch that reads as a state (issue 23, item 4)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def detail(client, export) -> str:
    return client.get(reverse("exports:detail", args=[export.pk])).content.decode()


def between(page: str, start: str, end: str) -> str:
    begin = page.index(start)
    return page[begin : page.index(end, begin)]


def test_run_is_the_primary_action_beside_the_title(client, alice, make_export, everyone):
    export = make_export(everyone)
    client.force_login(alice)
    page = detail(client, export)

    head = between(page, '<div class="page-head">', '<details class="menu"')
    assert "<h1>" in head
    assert re.search(
        r'<button class="button primary" type="submit" id="run-export">Run</button>', head
    )
    assert f'action="{reverse("exports:run", args=[export.pk])}"' in head
    assert page.count('id="run-export"') == 1  # no second Run further down


def test_the_more_menu_holds_every_other_action(client, alice, make_export, everyone):
    export = make_export(everyone)
    client.force_login(alice)
    page = detail(client, export)

    menu = between(page, '<details class="menu" id="export-more">', '<form class="schedule-switch"')
    assert '<summary class="button">More</summary>' in menu
    for label in ("Edit", "Create duplicate", "Preview", "Remove"):
        assert f">{label}</" in menu, label
    for confirmed in ("Detach connection", "Resend everything"):
        assert f'<summary class="button">{confirmed}…</summary>' in menu, confirmed
    outside = page.replace(menu, "")
    assert "Create duplicate" not in outside and "Detach connection" not in outside


def test_the_schedule_is_a_labelled_switch_that_posts_the_change(
    client, alice, make_export, everyone
):
    export = make_export(everyone, schedule_enabled=True)
    client.force_login(alice)
    page = detail(client, export)

    switch = between(page, '<form class="schedule-switch"', "</form>")
    assert f'action="{reverse("exports:schedule", args=[export.pk])}"' in switch
    assert 'role="switch"' in switch and 'aria-checked="true"' in switch and " checked" in switch
    assert "Run on schedule" in switch
    assert "<noscript>" in switch  # a submit button when there is no script
    assert "Schedule off" not in page and "Schedule on" not in page

    # Unticked, the browser sends only the hidden 0: the schedule goes off.
    response = client.post(
        reverse("exports:schedule", args=[export.pk]), {"enabled": "0", "next": "detail"}
    )
    assert response.url == reverse("exports:detail", args=[export.pk])
    export.refresh_from_db()
    assert not export.schedule_enabled
    assert 'aria-checked="false"' in between(
        detail(client, export), '<form class="schedule-switch"', "</form>"
    )

    # Ticked, the box's 1 follows the hidden 0 and wins.
    client.post(reverse("exports:schedule", args=[export.pk]), {"enabled": ["0", "1"]})
    export.refresh_from_db()
    assert export.schedule_enabled


def test_a_viewer_sees_neither_run_nor_the_menu_nor_the_switch(
    client, charlie, make_export, everyone
):
    export = make_export(everyone)
    client.force_login(charlie)
    page = detail(client, export)
    assert 'id="run-export"' not in page
    assert 'class="menu"' not in page
    assert 'role="switch"' not in page


def test_while_a_run_is_active_run_is_not_offered_and_comes_back_when_it_ends(
    client, alice, make_export, everyone
):
    from exports.models import ExportRun

    export = make_export(everyone)
    run = ExportRun.objects.create(export=export, trigger="user", status="running")
    client.force_login(alice)

    page = detail(client, export)
    assert 'id="run-export"' not in page
    assert '<a class="badge running" id="run-active" href="#export-live">Running now</a>' in page
    assert 'id="cancel-job"' in page
    # What the page polls redraws the header's slot too, out of band.
    live = client.get(export.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert '<div class="run-action" id="run-action" hx-swap-oob="true">' in live
    assert 'id="run-active"' in live

    ExportRun.objects.filter(pk=run.pk).update(status="succeeded")
    live = client.get(export.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert 'id="run-active"' not in live and 'id="run-export"' in live


def test_the_exports_list_offers_cancel_instead_of_run_while_a_run_is_active(
    client, alice, make_export, everyone
):
    from exports.models import ExportRun

    idle, busy = make_export(everyone), make_export(everyone)
    ExportRun.objects.create(export=busy, trigger="user", status="queued")
    client.force_login(alice)

    page = client.get(reverse("exports:list")).content.decode()

    assert page.count(f'action="{reverse("exports:run", args=[idle.pk])}"') == 1
    assert f'action="{reverse("exports:run", args=[busy.pk])}"' not in page
    assert f'action="{reverse("exports:cancel", args=[busy.pk])}"' in page
    assert f"Cancel the run of {busy.display_name}" in page
