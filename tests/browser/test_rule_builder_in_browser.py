"""A real headless Chromium: the rule builder reads like a sentence. No error before anything is
typed, fields by their labels, "and" / "or" between the rows, an estimate that stays in view and
reads as a share of every profile, and a saved rule summed up in words."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from segments.catalogue import refresh_field_catalogue
from tests.browser.test_segments_in_browser import log_in
from tests.factories import ProfileFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def profiles():
    for number, (city, signed_up) in enumerate(
        [("Oslo", "2026-11-30"), ("Oslo", "2019-01-01"), ("Paris", "2026-12-01"), ("Rome", "")]
    ):
        attributes = {"city": city, **({"signup_date": signed_up} if signed_up else {})}
        ProfileFactory(customer_id=f"p{number}", attributes=attributes)
    refresh_field_catalogue({"city": "text", "signup_date": "date"})


def test_the_rule_builder_reads_like_a_sentence(page: Page, live_server, bob, profiles):
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/segments/new/")
    builder = page.locator("#rule-builder")
    estimate = page.locator("#estimate")

    # Nothing typed yet: a hint, not an error.
    expect(estimate).to_have_text("Give each condition a value to see how many profiles match.")
    expect(page.locator(".error")).to_have_count(0)
    field = builder.get_by_label("Field").first
    expect(field.locator("option[value=signup_date]")).to_have_text("Signup date (Date)")
    expect(field.locator("option[value=customer_id]")).to_have_text("Customer id (Text)")

    field.select_option("city")
    builder.get_by_label("Comparison").first.select_option("equals")
    expect(page.locator(".error")).to_have_count(0)
    builder.get_by_label("Value").first.fill("Oslo")
    expect(estimate).to_have_text("Estimated size: 2 of 4 profiles (50%)")

    builder.get_by_role("button", name="+ Add condition").first.click()
    expect(page.locator(".rb-connector")).to_have_text(["and"])
    expect(page.locator(".error")).to_have_count(0)  # the new row is still to fill in
    builder.get_by_label("Field").nth(1).select_option("city")
    builder.get_by_label("Comparison").nth(1).select_option("equals")
    builder.get_by_label("Value").nth(1).fill("Paris")
    expect(estimate).to_have_text("Estimated size: 0 of 4 profiles (0%)")
    builder.locator("#rb-0-match").select_option("any")
    expect(page.locator(".rb-connector")).to_have_text(["or"])
    expect(estimate).to_have_text("Estimated size: 3 of 4 profiles (75%)")

    # A long rule: the estimate stays in view at the bottom of the window.
    page.set_viewport_size({"width": 1280, "height": 500})
    for _ in range(6):
        builder.get_by_role("button", name="+ Add condition").first.click()
    builder.get_by_role("button", name="+ Add condition").first.scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    expect(estimate).to_be_in_viewport()
    for _ in range(6):
        builder.get_by_role("button", name="Remove Email").first.click()
    expect(page.locator(".rb-connector")).to_have_count(1)

    builder.get_by_label("Value").first.fill("Oslo")
    page.get_by_label("Name").fill("Oslo or Paris")
    page.get_by_role("button", name="Save", exact=True).click()
    summary = page.locator(".rules-view")
    expect(summary).to_contain_text("Any of")
    expect(summary.locator(".rule-sentence")).to_have_text(["City is “Oslo”", "City is “Paris”"])
    expect(summary.locator(".rule-connector")).to_have_text(["or"])


def test_a_relative_date_rule_is_summed_up_in_words_in_every_language(
    page: Page, live_server, bob, profiles
):
    log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/segments/new/")
    builder = page.locator("#rule-builder")
    page.get_by_label("Name").fill("Recent sign-ups")
    builder.get_by_label("Field").first.select_option("signup_date")
    builder.get_by_label("Comparison").first.select_option("in_last_days")
    builder.get_by_label("Number").first.fill("730")
    expect(page.locator("#estimate")).to_have_text(re.compile(r"Estimated size: \d of 4 profiles"))
    page.get_by_role("button", name="Save", exact=True).click()

    sentence = page.locator(".rule-sentence")
    expect(sentence).to_have_text("Signup date is in the last 730 days")
    for language, words in [
        ("fr", "Signup date est dans les 730 derniers jours"),
        ("ja", "Signup date が過去 730 日以内"),
        ("nb", "Signup date er innenfor de siste 730 dagene"),
        ("zh-hans", "Signup date 在最近 730 天内"),
    ]:
        page.locator("#language-select").select_option(language)
        expect(sentence).to_have_text(words)
