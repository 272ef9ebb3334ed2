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
    expect(page.locator("#estimate")).to_have_text(
        re.compile(r"Estimated size: 1 of 3 profiles \(33\.3%\)")
    )

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


def test_a_contributor_builds_a_date_rule_and_a_difference_and_reads_the_chart(
    page: Page, live_server, bob
):
    from datetime import date, timedelta

    from segments.services import segment_refresh, segment_save

    recently, long_ago = date.today() - timedelta(days=5), date.today() - timedelta(days=100)
    for customer_id, country, signed_up in [
        ("ingrid", "Norway", recently),
        ("theo", "France", recently),
        ("ana", "Spain", recently),
        ("kari", "Norway", long_ago),
    ]:
        ProfileFactory(
            customer_id=customer_id,
            attributes={"country": country, "signed_up": signed_up.isoformat()},
        )
    refresh_field_catalogue({"country": "text", "signed_up": "date"})
    norway = segment_save(
        segment=None,
        name="Norway",
        description="",
        rules={
            "match": "all",
            "conditions": [{"field": "country", "operator": "equals", "value": "Norway"}],
        },
        user=bob,
    )
    segment_refresh(segment_id=norway.pk)

    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/segments/new/")
    page.get_by_label("Name").fill("Recent sign-ups")
    builder = page.locator("#rule-builder")
    builder.get_by_label("Field").first.select_option("signed_up")
    builder.get_by_label("Comparison").first.select_option("in_last_days")
    builder.get_by_label("Number").first.fill("30")
    expect(page.locator("#estimate")).to_have_text(re.compile(r"Estimated size: 3 of 4 profiles"))
    page.get_by_role("button", name="Save and refresh").click()
    expect(page.locator("#member-count")).to_have_text("3")

    page.goto(f"{live_server.url}/segments/new/")
    page.get_by_label("Name").fill("Recent, outside Norway")
    builder.get_by_label("Members are").select_option("difference")
    builder.get_by_label("Members of", exact=True).select_option(label="Recent sign-ups")
    builder.get_by_label("Except members of").select_option(label="Norway")
    page.get_by_role("button", name="Save and refresh").click()
    expect(page.get_by_role("heading", name="Recent, outside Norway")).to_be_visible()
    expect(page.locator("#member-count")).to_have_text("2")
    expect(page.locator("#preview")).not_to_contain_text("ingrid")

    page.get_by_role("button", name="Refresh", exact=True).click()
    chart = page.locator("#history-chart")
    expect(chart.locator("title")).to_contain_text(
        "Members after each of the last 2 refreshes: from 2"
    )
    expect(chart.locator("circle")).to_have_count(2)
    page.get_by_text("Refreshes as a table").click()
    expect(page.locator("#history tbody tr").first).to_contain_text(
        "Unchanged: nothing it reads had changed"
    )
