"""A real headless Chromium against the Mailchimp and Ortto fakes: an administrator adds a
Mailchimp connection by OAuth (the fake's consent page) and an Ortto one by API key and region,
adds an export to each with Load lists, runs it and sees the counts."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from exports.models import Export
from fakes.testing import running_fake
from segments.services import segment_refresh
from tests.browser.test_segments_in_browser import log_in
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
READERS = {f"reader{number}@example.com" for number in range(6)}


@pytest.fixture
def fakes(settings):
    with running_fake("mailchimp") as mailchimp, running_fake("ortto", rate_limit=0) as ortto:
        settings.MAILCHIMP_API_URL = mailchimp.base_url
        settings.MAILCHIMP_OAUTH_URL = mailchimp.root_url + "/oauth2"
        settings.MAILCHIMP_CLIENT_ID = "demo-mailchimp-client-id"
        settings.MAILCHIMP_CLIENT_SECRET = "demo-mailchimp-client-secret"
        settings.ORTTO_API_URLS = {**settings.ORTTO_API_URLS, "global": ortto.base_url}
        yield mailchimp, ortto


@pytest.fixture
def readers():
    for email in sorted(READERS):
        ProfileFactory(email=email, first_name="Reader")
    segment = SegmentFactory(
        name="Readers",
        rules={"match": "all", "conditions": [{"field": "email", "operator": "is_not_empty"}]},
    )
    segment_refresh(segment_id=segment.pk)
    return segment


def start_connection(page: Page, base_url: str, service: str, name: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_role("link", name="Connections").click()
    page.get_by_role("link", name="Add connection").click()
    page.get_by_role("link", name=service).click()
    page.get_by_label("Display name").fill(name)
    page.get_by_label("I agree").check()


def add_export(page: Page, base_url: str, connection: str, name: str, list_name: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_role("link", name="Exports").click()
    page.get_by_role("link", name="Add export").click()
    page.get_by_label(connection).check()
    page.get_by_label("Display name").fill(name)
    page.get_by_role("button", name="Load lists").click()
    picker = page.get_by_label(f"Lists in “{connection}”")
    picker.select_option(label=picker.locator("option", has_text=list_name).first.inner_text())
    # A new export maps the first and last name already (rows 2 and 3).
    expect(page.get_by_label("Profile field of row 2")).to_have_value("first_name")
    page.get_by_label("Readers").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def run_and_see_counts(page: Page, sent: int) -> None:
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#export-live")).to_contain_text("Successful")
    expect(page.locator(".count-sent")).to_have_text(str(sent))


def test_mailchimp_by_oauth_and_ortto_by_key_each_get_an_export_that_runs(
    page: Page, live_server, alice, fakes, readers
):
    mailchimp, ortto = fakes
    log_in(page, live_server.url, "alice")

    start_connection(page, live_server.url, "Mailchimp", "Our Mailchimp")
    page.get_by_role("button", name="Connect").click()
    page.get_by_role("button", name="Authenticate with Mailchimp").click()
    expect(page.get_by_role("heading", name="Log in to connect to Mailchimp")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    # Granting access was the last step: the connection is saved, with no Save to find.
    expect(page.get_by_text("Connection “Our Mailchimp” added.")).to_be_visible()

    start_connection(page, live_server.url, "Ortto", "Our Ortto")
    page.get_by_label("Ortto API key").fill("demo-ortto-key")
    page.get_by_label("Region").select_option("global")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("Ortto accepted the credentials")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Connection “Our Ortto” added.")).to_be_visible()

    add_export(page, live_server.url, "Our Mailchimp", "Readers to Mailchimp", "Newsletter")
    run_and_see_counts(page, len(READERS))
    audience = Export.objects.get(display_name="Readers to Mailchimp").list_id
    members = mailchimp.state(list=audience)["accounts"][0]["audiences"][audience]["members"]
    assert set(members) == READERS
    assert members["reader0@example.com"]["merge_fields"] == {"FNAME": "Reader", "LNAME": "Lee"}

    add_export(page, live_server.url, "Our Ortto", "Readers to Ortto", "Newsletter")
    run_and_see_counts(page, len(READERS))
    audience = Export.objects.get(display_name="Readers to Ortto").list_id
    state = ortto.state(list=audience)["accounts"][0]["audiences"][audience]
    assert set(state["members"]) == READERS
