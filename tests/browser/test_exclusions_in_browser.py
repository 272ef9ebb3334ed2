"""A real headless Chromium: an administrator excludes pasted addresses from every export,
sees the invalid line named, corrects it and finds the addresses listed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.consent import ConsentState
from exports.models import ConsentRule, Exclusion
from segments.models import ConsentRecord
from tests.browser.test_segments_in_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_administrator_pastes_addresses_to_exclude(page: Page, live_server, alice):
    log_in(page, live_server.url, "alice")
    page.get_by_role("link", name="Exclusions").click()
    expect(page.get_by_role("heading", name="Exclusions", level=1)).to_be_visible()

    form = page.locator("#add-addresses")
    form.get_by_label("Addresses").fill("Ann@Example.org\nnot an address\nann@example.org")
    form.get_by_label("Note").fill("Asked by legal")
    form.get_by_role("button", name="Exclude these addresses").click()
    expect(page.locator("#add-addresses")).to_contain_text(
        "Line 2: “not an address” is not an email address."
    )
    assert not Exclusion.objects.exists()

    page.locator("#add-addresses").get_by_label("Addresses").fill(
        "Ann@Example.org\nbob@example.org\nann@example.org"
    )
    page.locator("#add-addresses").get_by_role("button", name="Exclude these addresses").click()
    expect(page.get_by_role("status")).to_contain_text("2 addresses excluded from every export.")
    expect(page.get_by_role("status")).to_contain_text("1 repeated line was counted once.")
    table = page.locator("#exclusions")
    expect(table).to_contain_text("ann@example.org")
    expect(table).to_contain_text("Asked by legal")
    assert sorted(Exclusion.objects.values_list("value", flat=True)) == [
        "ann@example.org",
        "bob@example.org",
    ]


def test_an_administrator_chooses_the_consent_rule(page: Page, live_server, alice):
    ConsentRecord.objects.create(email="ann@example.org", state=ConsentState.BOUNCED)
    log_in(page, live_server.url, "alice")
    page.get_by_role("link", name="Exclusions").click()
    rule = page.locator("#consent-rule")
    expect(rule).to_contain_text("Bounced 1")
    expect(rule.get_by_label("excluded from every export")).to_be_checked()

    rule.get_by_label("excluded only from that connection's exports").check()
    rule.get_by_role("button", name="Save the rule").click()

    expect(page.get_by_role("status")).to_contain_text("Consent rule saved.")
    expect(page.locator("#consent-rule").get_by_label("only from that connection")).to_be_checked()
    assert ConsentRule.load().scope == ConsentRule.Scope.SAME_CONNECTION
