"""A real headless Chromium on an export's page (issue 23, item 4): Run leads, the other actions
open from one More menu by keyboard, a confirmation inside it still asks first, and the Run on
schedule switch changes the schedule with script and without."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from connections.models import Connection
from exports.models import Export
from tests.browser.test_segments_in_browser import log_in
from tests.connections.factories import ConnectionFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def export(bob):
    connection = ConnectionFactory(
        campaign_monitor=True,
        display_name="Marketing account",
        who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
    )
    return Export.objects.create(
        display_name="Weekly readers",
        connection=connection,
        list_id="list-news",
        schedule_enabled=True,
        created_by=bob,
    )


def scrolls_sideways(page: Page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


def test_on_a_phone_run_leads_and_more_opens_from_the_keyboard(page: Page, live_server, export):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}{export.get_absolute_url()}")

    expect(page.locator(".page-head").get_by_role("button", name="Run", exact=True)).to_be_visible()
    duplicate = page.get_by_role("button", name="Create duplicate")
    expect(duplicate).to_be_hidden()
    page.locator("#export-more > summary").focus()
    page.keyboard.press("Enter")
    expect(duplicate).to_be_visible()
    expect(page.get_by_role("link", name="Edit", exact=True)).to_be_visible()
    assert not scrolls_sideways(page)

    page.locator("#export-more").get_by_text("Detach connection…").click()
    expect(page.get_by_text("cannot run until you choose a connection again")).to_be_visible()
    assert not scrolls_sideways(page)
    page.locator("#export-more").get_by_role("button", name="Detach connection").click()
    expect(page.get_by_text("Detached: this export cannot run")).to_be_visible()
    export.refresh_from_db()
    assert export.connection is None


def test_the_switch_turns_the_schedule_off_and_on(page: Page, live_server, export):
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}{export.get_absolute_url()}")

    switch = page.get_by_role("switch", name="Run on schedule")
    expect(switch).to_be_checked()
    switch.click()
    expect(page.get_by_text("no longer runs on the schedule")).to_be_visible()
    expect(switch).not_to_be_checked()
    expect(switch).to_have_attribute("aria-checked", "false")
    export.refresh_from_db()
    assert not export.schedule_enabled

    switch.press("Space")
    expect(page.get_by_text("now runs with every scheduled refresh")).to_be_visible()
    expect(switch).to_have_attribute("aria-checked", "true")
    export.refresh_from_db()
    assert export.schedule_enabled


def test_without_javascript_the_switch_has_a_save_button(browser: Browser, live_server, export):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}{export.get_absolute_url()}")

    page.get_by_role("switch", name="Run on schedule").uncheck()
    page.locator("form.schedule-switch").get_by_role("button", name="Save").click()
    expect(page.get_by_text("no longer runs on the schedule")).to_be_visible()
    export.refresh_from_db()
    assert not export.schedule_enabled
    context.close()
