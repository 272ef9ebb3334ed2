"""A real headless Chromium: log in, build a segment with two conditions, refresh, see members."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from segments.catalogue import refresh_field_catalogue
from tests.conftest import PASSWORD
from tests.factories import ProfileFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_a_contributor_builds_refreshes_and_previews_a_segment(page: Page, live_server, bob):
    ProfileFactory(
        customer_id="ingrid",
        email="ingrid@example.no",
        attributes={"country": "Norway", "orders": 12},
    )
    ProfileFactory(
        customer_id="kari", email="kari@example.no", attributes={"country": "Norway", "orders": 2}
    )
    ProfileFactory(
        customer_id="theo", email="theo@example.fr", attributes={"country": "France", "orders": 30}
    )
    refresh_field_catalogue({"country": "text", "orders": "number"})

    log_in(page, live_server.url, "bob")
    expect(page.get_by_role("heading", name="Segments")).to_be_visible()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Name").fill("Loyal Norwegians")

    builder = page.locator("#rule-builder")
    builder.get_by_label("Field").first.select_option("country")
    builder.get_by_label("Comparison").first.select_option("equals")
    builder.get_by_label("Value").first.fill("Norway")
    builder.get_by_role("button", name="+ Add condition").first.click()
    builder.get_by_label("Field").nth(1).select_option("orders")
    builder.get_by_label("Comparison").nth(1).select_option("greater_than")
    builder.get_by_label("Value").nth(1).fill("5")
    expect(page.locator("#estimate")).to_have_text(re.compile(r"Estimated size: 1 profile\b"))

    page.get_by_role("button", name="Save and refresh").click()
    expect(page.get_by_role("heading", name="Loyal Norwegians")).to_be_visible()
    expect(page.locator("#member-count")).to_have_text("1")
    expect(page.locator("#preview")).to_contain_text("ingrid@example.no")
    expect(page.locator("#preview")).not_to_contain_text("kari@example.no")


def test_the_language_picker_switches_the_interface_to_norwegian(page: Page, live_server, charlie):
    log_in(page, live_server.url, "charlie")
    page.get_by_label("Language").select_option("nb")
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.get_by_role("link", name="Profiler")).to_be_visible()
