"""A real headless Chromium on a run awaiting approval (issue 26): its page shows the numbers
and what each choice does, and Approve queues it again."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from connections.models import Connection
from exports import guard
from exports.models import Export, ExportRun
from tests.browser.test_segments_in_browser import log_in
from tests.connections.factories import ConnectionFactory

pytestmark = [pytest.mark.browser, pytest.mark.guard, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def held(bob, monkeypatch) -> ExportRun:
    export = Export.objects.create(
        display_name="Weekly readers",
        connection=ConnectionFactory(
            display_name="Marketing account",
            who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
        ),
        list_id="list-news",
        sync_mode=Export.SyncMode.MIRROR,
        created_by=bob,
    )
    verdict = guard.judge(
        list_size=1200, adds=3, removals=1200, thresholds=guard.thresholds_for(export)
    )
    # The approved run would be sent to a worker: here it stays queued.
    monkeypatch.setattr("exports.services._enqueue", lambda run_id: None)
    return ExportRun.objects.create(
        export=export,
        trigger=ExportRun.Trigger.SCHEDULE,
        status=ExportRun.Status.AWAITING_APPROVAL,
        profiles_total=3,
        to_send=3,
        to_add=3,
        to_remove=1200,
        list_size=1200,
        recipients_ready=True,
        held_because=guard.stored_reasons(verdict),
    )


def test_a_waiting_runs_page_shows_the_numbers_and_approve_queues_it(page: Page, live_server, held):
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/exports/runs/{held.pk}/")

    expect(page.get_by_role("heading", name="This run awaits approval")).to_be_visible()
    expect(page.locator(".guard-list-size")).to_have_text("1,200")
    expect(page.locator(".guard-adds")).to_have_text("3")
    expect(page.locator(".guard-removals")).to_have_text("1,200")
    expect(page.locator(".guard-list-size-after")).to_have_text("3")
    expect(page.get_by_text("more than 10% of the 1,200 in the list")).to_be_visible()
    expect(page.get_by_text("Ends the run without sending anything")).to_be_visible()

    page.get_by_role("button", name="Approve").click()

    expect(page.get_by_text(f"Run #{held.pk} is approved")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    held.refresh_from_db()
    assert (held.status, held.approved, held.decided_by.username) == ("queued", True, "bob")
