"""A real headless Chromium: an administrator adds a user, then changes the user's role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from playwright.sync_api import Page, expect

from accounts.roles import Role, role_of
from tests.browser.test_segments_in_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_administrator_adds_a_user_and_changes_the_role(page: Page, live_server, alice):
    log_in(page, live_server.url, "alice")
    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Add user").click()
    page.get_by_label("Username").fill("dana")
    page.get_by_label("First name").fill("Dana")
    page.get_by_label("Email").fill("dana@example.com")
    page.get_by_label("Role").select_option("contributor")
    page.get_by_role("button", name="Add user and send invitation").click()

    expect(page.get_by_role("status")).to_contain_text("An invitation to choose a password")
    row = page.locator("#users tr", has_text="dana@example.com")
    expect(row).to_contain_text("Contributor")
    assert mail.outbox[-1].to == ["dana@example.com"]

    page.get_by_role("link", name="dana", exact=True).click()
    page.get_by_label("Role").select_option("administrator")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#users tr", has_text="dana@example.com")).to_contain_text("Administrator")
    assert role_of(User.objects.get(username="dana")) == Role.ADMINISTRATOR
