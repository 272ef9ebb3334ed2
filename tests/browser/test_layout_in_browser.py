"""The main pages of each role at a desktop width (1280 px) and a phone's (390 px), in a real
headless Chromium: nothing scrolls sideways at either width, the page's primary action shows
without scrolling, and axe-core finds no WCAG 2.2 AA violation (issue 23, items 3 and 10).

axe-core is vendored for the tests (``vendor/axe.min.js``): no network is needed. The pages
forbid inline script (Content-Security-Policy), so the context bypasses the policy to inject it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

import audit
from connections.models import Connection
from exports.models import Export, ExportRun
from segments.services import segment_refresh
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

#: What a page is called in a failure, how to find its address, and its primary action's name
#: (None: the page has none for that role).
PageSpec = tuple[str, Callable[[dict], str], str | None]

ADMINISTRATOR_PAGES: list[PageSpec] = [
    ("segments", lambda data: reverse("segments:list"), "New segment"),
    ("segment", lambda data: data["segment"].get_absolute_url(), None),
    ("exports", lambda data: reverse("exports:list"), "Add export"),
    ("export", lambda data: data["export"].get_absolute_url(), "Run"),
    ("run", lambda data: reverse("exports:run_detail", args=[data["run"].pk]), None),
    ("profiles", lambda data: reverse("profiles:list"), "Import CSV"),
    ("connections", lambda data: reverse("connections:list"), "Add connection"),
    ("connection", lambda data: reverse("connections:edit", args=[data["connection"].pk]), None),
    ("users", lambda data: reverse("users:list"), "Add user"),
    ("audit log", lambda data: reverse("audit:list"), "Filter"),
    ("system", lambda data: reverse("system:status"), None),
    ("schedule", lambda data: reverse("system:schedule"), None),
    ("webhooks", lambda data: reverse("webhooks:list"), "Add endpoint"),
    ("add webhook", lambda data: reverse("webhooks:create"), None),
    ("add export", lambda data: reverse("exports:create"), None),
    ("members", lambda data: reverse("segments:members", args=[data["segment"].pk]), None),
    ("import", lambda data: reverse("profiles:import"), None),
    ("add connection", lambda data: reverse("connections:choose_type"), None),
    ("add user", lambda data: reverse("users:add"), None),
    ("user", lambda data: reverse("users:edit", args=[data["user"].pk]), None),
    ("API tokens", lambda data: reverse("accounts:tokens"), None),
    ("not found", lambda data: "/no-such-page/", None),
]
CONTRIBUTOR_PAGES: list[PageSpec] = [
    ("segments", lambda data: reverse("segments:list"), "New segment"),
    ("segment", lambda data: data["segment"].get_absolute_url(), None),
    ("new segment", lambda data: reverse("segments:create"), None),
    ("exports", lambda data: reverse("exports:list"), "Add export"),
    ("export", lambda data: data["export"].get_absolute_url(), "Run"),
    ("profiles", lambda data: reverse("profiles:list"), None),
]
VIEWER_PAGES: list[PageSpec] = [
    ("segments", lambda data: reverse("segments:list"), None),
    ("segment", lambda data: data["segment"].get_absolute_url(), None),
    ("exports", lambda data: reverse("exports:list"), None),
    ("export", lambda data: data["export"].get_absolute_url(), None),
    ("profiles", lambda data: reverse("profiles:list"), None),
]


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "bypass_csp": True}


@pytest.fixture
def shop(alice):
    """A small shop's data: profiles with long addresses, segments, a connection shared with
    contributors, an export that has run, and a few audit entries."""
    for number in range(12):
        ProfileFactory(
            customer_id=f"customer-{number:04}",
            email=f"a.rather.long.address.{number}@subdomain.example.com",
            first_name="Ingrid",
            last_name="Solberg-Haugen",
            attributes={"country": "Norway", "orders": number, "plan": "gold"},
        )
    segment = SegmentFactory(
        name="Loyal Norwegians",
        description="Customers in Norway with more than five orders",
        rules={
            "match": "all",
            "conditions": [{"field": "customer_id", "operator": "is_not_empty"}],
        },
    )
    segment_refresh(segment_id=segment.pk)
    SegmentFactory(name="Everyone in the world", member_count=1_500_000)
    connection = ConnectionFactory(
        campaign_monitor=True,
        display_name="Marketing account for the Nordic newsletters",
        who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
    )
    export = Export.objects.create(
        display_name="Weekly newsletter to loyal Norwegians",
        connection=connection,
        list_id="list-news",
        list_name="Newsletter",
        first_name_field="first_name",
        created_by=alice,
    )
    export.segments.set([segment])
    run = ExportRun.objects.create(
        export=export,
        status=ExportRun.Status.COMPLETED_WITH_WARNINGS,
        trigger=ExportRun.Trigger.USER,
        triggered_by=alice,
        sent=11,
        failed=1,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    audit.record("segment.created", object_type="segment", object_id=segment.pk)
    return {
        "segment": segment,
        "connection": connection,
        "export": export,
        "run": run,
        "user": alice,
    }


def sign_in(page: Page, base_url: str, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": base_url}]
    )


def axe_violations(page: Page) -> list[str]:
    """Each WCAG 2.2 A/AA violation axe-core finds on the page, with its first elements."""
    page.add_script_tag(path=AXE)
    violations = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help}: ` +
                v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | "));
        }""",
        WCAG_22_AA,
    )
    return list(violations)


def scrolls_sideways(page: Page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


def primary_action_shows(page: Page, name: str) -> bool:
    """Whether the page's primary action (a ``.button.primary`` of that name) is entirely in
    the window as the page opens, before any scrolling."""
    action = page.locator("main .button.primary").filter(has_text=name).first
    if not action.count() or not action.is_visible():
        return False
    box = action.bounding_box()
    size = page.viewport_size
    return (
        box is not None
        and size is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"]
        and box["y"] + box["height"] <= size["height"]
    )


def problems_on(page: Page, base_url: str, pages: list[PageSpec], data: dict) -> list[str]:
    problems = []
    for name, address, primary in pages:
        page.goto(base_url + address(data))
        page.wait_for_load_state("load")
        if scrolls_sideways(page):
            width = page.evaluate("document.documentElement.scrollWidth")
            problems.append(f"{name}: scrolls sideways ({width} px wide)")
        if primary and not primary_action_shows(page, primary):
            problems.append(f"{name}: “{primary}” is not in view without scrolling")
        problems += [f"{name}: {violation}" for violation in axe_violations(page)]
    return problems


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_an_administrators_pages_fit_and_pass_axe(page: Page, live_server, alice, shop, viewport):
    page.set_viewport_size(viewport)
    sign_in(page, live_server.url, alice)
    assert problems_on(page, live_server.url, ADMINISTRATOR_PAGES, shop) == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_a_contributors_pages_fit_and_pass_axe(page: Page, live_server, bob, shop, viewport):
    page.set_viewport_size(viewport)
    sign_in(page, live_server.url, bob)
    assert problems_on(page, live_server.url, CONTRIBUTOR_PAGES, shop) == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_a_viewers_pages_fit_and_pass_axe(page: Page, live_server, charlie, shop, viewport):
    page.set_viewport_size(viewport)
    sign_in(page, live_server.url, charlie)
    assert problems_on(page, live_server.url, VIEWER_PAGES, shop) == []


def test_the_login_page_fits_a_phone_and_passes_axe(page: Page, live_server):
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + reverse("accounts:login"))
    assert not scrolls_sideways(page)
    assert axe_violations(page) == []


def test_on_a_phone_the_menu_folds_away_and_opens_from_the_keyboard(page: Page, live_server, alice):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, alice)
    page.goto(live_server.url + reverse("segments:list"))
    menu = page.get_by_role("button", name="Menu")
    sidebar = page.get_by_role("navigation", name="Main")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(sidebar).to_be_hidden()

    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(sidebar.get_by_role("link", name="Audit log")).to_be_visible()
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(menu).to_be_focused()

    page.set_viewport_size(DESKTOP)
    expect(menu).to_be_hidden()
    expect(sidebar).to_be_visible()


def test_on_a_phone_a_lists_rows_are_stacked_with_their_column_names(
    page: Page, live_server, alice, shop
):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, alice)
    page.goto(live_server.url + reverse("exports:list"))
    cell = page.locator("#exports tbody td[data-label='Connection used']").first
    expect(cell).to_contain_text("Marketing account for the Nordic newsletters")
    label = cell.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label == '"Connection used"'
    assert not scrolls_sideways(page)


def test_a_list_sorts_by_a_column_header_and_keeps_its_search(page: Page, live_server, alice):
    for name in ("Zebra buyers", "Apple buyers", "Mango buyers", "Apple lovers"):
        SegmentFactory(name=name)
    sign_in(page, live_server.url, alice)
    page.goto(live_server.url + reverse("segments:list"))
    page.get_by_label("Search by name or description").fill("buyers")
    page.get_by_role("button", name="Search").click()
    names = page.locator("#segments tbody td:first-child")
    expect(names).to_have_text(["Apple buyers", "Mango buyers", "Zebra buyers"])

    page.get_by_role("link", name="Name").click()
    expect(names).to_have_text(["Zebra buyers", "Mango buyers", "Apple buyers"])
    header = page.get_by_role("columnheader", name="Name")
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(page.get_by_label("Search by name or description")).to_have_value("buyers")


@pytest.mark.parametrize("language", ["fr", "ja", "nb", "zh-hans"])
def test_the_widest_lists_fit_in_every_language(page: Page, live_server, alice, shop, language):
    sign_in(page, live_server.url, alice)
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )
    too_wide = []
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        for name in ("exports:list", "audit:list", "users:list", "connections:list"):
            page.goto(live_server.url + reverse(name))
            if scrolls_sideways(page):
                too_wide.append((viewport["width"], name))
    assert too_wide == []
