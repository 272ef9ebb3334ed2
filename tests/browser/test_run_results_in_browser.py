"""A real headless Chromium: a run with refusals and skips reads at a glance. The bar is amber
and says how many the service refused, the page stops saying "queued" once the run is done, the
failures come in tabs that work without JavaScript, and a retry names the run it retried."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from connections.models import Connection
from exports.models import Export, ExportRun
from segments.services import segment_refresh
from tests.browser.test_segments_in_browser import log_in
from tests.connections.factories import ConnectionFactory
from tests.exports.conftest import RecordingBackend
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def export_with_problems(monkeypatch):
    """An export of four good profiles, two the service refuses and one without an e-mail."""
    backend = RecordingBackend()
    monkeypatch.setattr("exports.engine.backend_for", lambda connection: backend)
    connection = ConnectionFactory(
        campaign_monitor=True,
        display_name="Marketing account",
        who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
    )
    for number in range(4):
        ProfileFactory(customer_id=f"good{number}", email=f"reader{number}@example.com")
    ProfileFactory(customer_id="refused1", email="reject1@example.com")
    ProfileFactory(customer_id="refused2", email="reject2@example.com")
    ProfileFactory(customer_id="no-email", email="")
    segment = SegmentFactory(
        name="Readers",
        rules={
            "match": "all",
            "conditions": [{"field": "customer_id", "operator": "is_not_empty"}],
        },
    )
    segment_refresh(segment_id=segment.pk)
    export = Export.objects.create(
        display_name="Weekly readers", connection=connection, list_id="list-1", email_field="email"
    )
    export.segments.set([segment])
    return export, backend


def test_a_run_with_refusals_reads_at_a_glance_and_its_retry_says_so(
    page: Page, live_server, bob, export_with_problems
):
    export, backend = export_with_problems
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}{export.get_absolute_url()}")
    page.get_by_role("button", name="Run", exact=True).click()

    live = page.locator("#export-live")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(live).to_contain_text("Completed with warnings")
    expect(page.get_by_role("progressbar")).to_have_class(re.compile(r"\bwith-failures\b"))
    expect(live.locator(".progress-state")).to_have_text("2 refused by the service")
    expect(page.locator("main")).not_to_contain_text("queued to run")
    first = ExportRun.objects.get()

    page.get_by_role("link", name="Details and failures of this run").click()
    expect(page.locator("#failure-filters a[aria-current=page]")).to_have_text("All (3)")
    page.get_by_role("link", name="Refused by the service (2)").click()
    expect(page).to_have_url(re.compile(r"\?show=refused$"))
    expect(page.locator("#failures tbody tr")).to_have_count(2)
    expect(page.get_by_role("link", name="Download CSV")).to_have_attribute(
        "href", re.compile(r"failures\.csv\?show=refused$")
    )
    page.get_by_role("link", name="No email address (1)").click()
    expect(page.locator("#failures tbody tr")).to_have_count(1)
    expect(page.locator("#failures")).to_contain_text("no-email")

    backend.refusing = False
    page.get_by_role("button", name="Retry failed records").click()
    expect(live).to_contain_text("Successful")
    expect(page.locator("main")).not_to_contain_text("is queued")
    trigger = page.locator("#run-history tbody tr").first.locator("td.trigger")
    expect(trigger).to_contain_text(f"Retry of run #{first.pk}")
    trigger.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/exports/runs/{first.pk}/$"))


def test_the_failure_tabs_work_without_javascript(
    browser: Browser, live_server, bob, export_with_problems
):
    export, _backend = export_with_problems
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}{export.get_absolute_url()}")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("link", name="Details and failures of this run").click()

    page.get_by_role("link", name="Skipped by us (1)").click()
    expect(page.locator("#failure-filters a[aria-current=page]")).to_have_text("Skipped by us (1)")
    expect(page.locator("#failures tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Refused by the service (2)").click()
    expect(page.locator("#failures tbody tr")).to_have_count(2)
    context.close()
