"""A real headless Chromium against the Campaign Monitor fake: an administrator maps fields with
Load fields, creates a missing field, previews what the service will receive, and runs the
export; the fake then holds the values (issue 24)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from connections.services import backend_for
from connections.types.base import FieldType
from exports.models import Export
from tests.browser.test_segments_in_browser import log_in
from tests.exports.conftest import cm, cm_connection, cm_list_id, customers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["cm", "cm_connection", "cm_list_id", "customers"]  # the fixtures, from the exports'


def test_an_administrator_maps_fields_creates_one_previews_and_runs(
    page: Page, live_server, alice, cm, cm_connection, cm_list_id, customers
):
    plan = backend_for(cm_connection).create_field(cm_list_id, "Plan", FieldType.TEXT)

    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/exports/add/")
    page.get_by_label("CM", exact=True).check()
    page.get_by_label("Display name").fill("Customers with plans")
    page.get_by_label("List ID").fill(cm_list_id)
    # Tags are not offered for Campaign Monitor: the form says so instead.
    expect(page.get_by_text("Campaign Monitor has no tags")).to_be_visible()
    expect(page.get_by_label("Tags for everyone sent")).to_be_hidden()

    page.get_by_role("button", name="Add a field").click()
    page.get_by_role("button", name="Add a field").click()
    expect(page.locator("tr.mapping-row")).to_have_count(5)
    page.get_by_role("button", name="Load fields").click()
    expect(page.get_by_text("are offered in each row")).to_be_visible()
    # Adding and removing a row keeps the loaded fields offered: no second Load fields.
    page.get_by_role("button", name="Add a field").click()
    expect(page.locator("tr.mapping-row")).to_have_count(6)
    offered = f'option[value="{plan.key}"]'
    expect(page.get_by_label("Destination field of row 6").locator(offered)).to_have_count(1)
    page.get_by_role("button", name="Remove row 6").click()
    expect(page.locator("tr.mapping-row")).to_have_count(5)
    expect(page.get_by_label("Destination field of row 4").locator(offered)).to_have_count(1)

    page.get_by_label("Profile field of row 4").select_option("plan")
    page.get_by_label("Destination field of row 4").select_option(plan.key)
    page.get_by_label("Profile field of row 5").select_option("renewal")
    page.get_by_label("Destination field of row 5").select_option("__new__")
    page.locator("#mapping-new-name-4").fill("Renewal")
    page.locator("#mapping-new-type-4").select_option("date")
    page.get_by_label("When row 5 is empty").select_option("clear")
    page.get_by_label(customers.name).check()
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", name="Customers with plans")).to_be_visible()
    export = Export.objects.get()
    assert [row.destination_name for row in export.field_rows()][3:] == ["Plan", "Renewal"]
    expect(page.locator(".mapping-summary")).to_contain_text("Renewal")

    page.get_by_text("More", exact=True).click()  # Preview waits in the More menu
    page.get_by_role("link", name="Preview").click()
    payloads = page.locator("#preview-payloads")
    expect(payloads).to_contain_text("person0@example.com")
    expect(payloads).to_contain_text("Plan 0")
    expect(payloads).to_contain_text("2027/03/01")

    page.get_by_role("link", name="Back to the export").click()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#export-live")).to_contain_text("Successful")
    held = cm.state(list=cm_list_id)["lists"][cm_list_id]["subscribers"]
    assert held["person3@example.com"]["CustomFields"] == {
        plan.key: "Plan 3",
        "[Renewal]": "2027/03/04",
    }
