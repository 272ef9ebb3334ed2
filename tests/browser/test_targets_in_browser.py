"""WCAG 2.2 target size (2.5.8): every box to tick on the add-export form and the schedule page
is at least 24 by 24 px in a real browser (issue 23, item 15)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.test_segments_in_browser import log_in
from tests.connections.factories import ConnectionFactory
from tests.factories import SegmentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def small_targets(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        'input[type="checkbox"], input[type="radio"]',
        """boxes => boxes
            .filter(box => box.offsetParent !== null)
            .map(box => [box.name + "=" + box.value, box.getBoundingClientRect()])
            .filter(([, r]) => r.width < 24 || r.height < 24)
            .map(([name, r]) => `${name}: ${r.width}x${r.height}`)""",
    )


def test_every_box_to_tick_is_at_least_24_pixels(page: Page, live_server, alice):
    SegmentFactory(name="Everyone")
    ConnectionFactory(who_can_use="administrators_and_contributors")
    log_in(page, live_server.url, "alice")
    for path in ("/exports/add/", "/system/schedule/"):
        page.goto(f"{live_server.url}{path}")
        assert page.locator('input[type="checkbox"], input[type="radio"]').count() > 0, path
        assert small_targets(page) == [], path
