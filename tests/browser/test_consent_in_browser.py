"""A real headless Chromium: a viewer opens a profile from the list and reads who it opted out
at, and a marketer picks the consent condition in the segment builder."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from segments.models import ConsentRecord
from tests.browser.test_segments_in_browser import log_in
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_profile_page_shows_its_consent(page: Page, live_server, charlie):
    shop = ConnectionFactory(display_name="Shop newsletter")
    ProfileFactory(customer_id="ann-1", email="Ann@Example.com")
    ConsentRecord.objects.create(
        email="ann@example.com",
        state="unsubscribed",
        connection=shop,
        connection_name=shop.display_name,
        list_id="L1",
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
        reason="Too many emails",
    )
    log_in(page, live_server.url, "charlie")
    page.goto(f"{live_server.url}/profiles/")
    page.get_by_role("link", name="ann-1").click()
    consent = page.locator("#consent")
    expect(consent.get_by_role("heading", name="Consent")).to_be_visible()
    row = consent.locator("#consent-records tbody tr")
    expect(row).to_have_count(1)
    for text in ("Unsubscribed", "Shop newsletter", "L1", "Too many emails"):
        expect(row).to_contain_text(text)


def test_the_builder_offers_the_consent_condition(page: Page, live_server, bob):
    ProfileFactory(customer_id="ann-1", email="ann@example.com")
    ProfileFactory(customer_id="bo-2", email="bo@example.com")
    ConsentRecord.objects.create(email="bo@example.com", state="bounced", connection_name="X")
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/segments/new/")
    page.locator("#rb-0-0-field").select_option("consent:bounced")
    expect(page.locator("#rb-0-0-operator")).to_have_value("opted_out")
    expect(page.locator("#estimate")).to_contain_text("Estimated size: 1 of 2 profiles")
    page.locator("#rb-0-0-operator").select_option("not_opted_out")
    assert '"consent":"bounced"' in page.locator("input[name=rules]").input_value()
