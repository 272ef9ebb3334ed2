"""A real headless Chromium: an administrator adds a PostgreSQL source, previews it, maps its
columns, runs it and reads the run's report."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from segments.models import Profile
from tests.browser.test_segments_in_browser import log_in
from tests.sources.places import people

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_administrator_adds_previews_maps_runs_and_reads_the_report(
    page: Page, live_server, alice, postgresql_place
):
    rows = people(30)
    rows[4] = (5, None, *rows[4][2:])  # a row without a customer id, for the report
    postgresql_place.write(rows)
    where = postgresql_place.connection_settings

    log_in(page, live_server.url, "alice")
    page.get_by_role("link", name="Sources").click()
    page.get_by_role("link", name="Add PostgreSQL source").click()
    page.get_by_label("Host").fill(where["host"])
    page.get_by_label("Port").fill(str(where["port"]))
    page.get_by_label("Database").fill(where["database"])
    page.get_by_label("User", exact=True).fill(where["user"])
    page.get_by_label("TLS").select_option("disable")
    page.get_by_label("Name", exact=True).fill("Warehouse")
    page.get_by_label("Table or view").fill("people")
    page.get_by_label("Customer id column").fill("customer")
    page.get_by_label("E-mail column").fill("email")
    page.get_by_label("First name column").fill("first_name")
    page.get_by_label("Attributes").fill("score = score\nborn = born")

    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview")
    expect(preview).to_contain_text("float8 → number")
    expect(preview).to_contain_text("person1@example.com")
    expect(preview.locator("tbody tr")).to_have_count(20)

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Warehouse")).to_be_visible()
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#runs")).to_contain_text("Completed with errors")
    page.locator("#runs a").first.click()
    expect(page.locator("#counts")).to_contain_text("29")
    expect(page.locator("#rejected-rows")).to_contain_text("The row has no customer id.")
    assert Profile.objects.get(customer_id="C00002").attributes == {
        "score": 3,
        "born": "1990-01-03",
    }
