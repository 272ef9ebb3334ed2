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
