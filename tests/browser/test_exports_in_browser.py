"""A real headless Chromium: a contributor adds an export on a shared connection, picks the list
with Load lists, runs it, and sees the progress reach 100%."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import Page, expect

from connections.models import Connection
from connections.types.base import DestinationList
from exports.models import Export, ExportRun, RefreshSchedule
from segments.services import segment_refresh
from tests.browser.test_segments_in_browser import log_in
from tests.connections.factories import ConnectionFactory
from tests.exports.conftest import RecordingBackend
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


class RecordingBackendWithLists(RecordingBackend):
    def list_destinations(self):
        return [
            DestinationList(id="list-news", name="Newsletter"),
            DestinationList(id="list-vip", name="VIP customers"),
        ]


def test_a_contributor_adds_an_export_runs_it_and_sees_it_finish(
    page: Page, live_server, bob, monkeypatch
):
    backend = RecordingBackendWithLists()
    monkeypatch.setattr("connections.services.backend_for", lambda connection: backend)
    monkeypatch.setattr("exports.engine.backend_for", lambda connection: backend)
    ConnectionFactory(
        campaign_monitor=True,
        display_name="Marketing account",
        who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
    )
    ConnectionFactory(display_name="Administrators' account")
    for number in range(7):
        ProfileFactory(email=f"reader{number}@example.com")
    ProfileFactory(email="")
    segment = SegmentFactory(
        name="Readers",
        rules={
            "match": "all",
            "conditions": [{"field": "customer_id", "operator": "is_not_empty"}],
        },
    )
    segment_refresh(segment_id=segment.pk)
    SegmentFactory(name="Everyone in the world", member_count=1_500_000)

    log_in(page, live_server.url, "bob")
    page.get_by_role("link", name="Exports").click()
    page.get_by_role("link", name="Add export").click()

    expect(page.get_by_text("Administrators' account")).to_have_count(0)
    page.get_by_label("Marketing account").check()
    page.get_by_label("Display name").fill("Weekly readers")
    page.get_by_role("button", name="Load lists").click()
    page.get_by_label("Lists in “Marketing account”").select_option("list-vip")
    expect(page.get_by_label("List ID")).to_have_value("list-vip")
    page.get_by_label("Readers").check()
    readers = page.locator("label.checkbox", has_text="Readers")
    assert_on_one_line(page.get_by_label("Readers"), readers, "8 members")
    page.set_viewport_size({"width": 640, "height": 900})  # a long label must wrap beside it
    mirror = page.locator("label.checkbox", has_text="Mirror:")
    assert_on_one_line(page.get_by_label("Mirror:"), mirror, "Mirror:")
    page.set_viewport_size({"width": 1280, "height": 720})
    warning = page.locator("#limit-warning")
    page.get_by_label("Everyone in the world").check()
    expect(warning).to_contain_text("Campaign Monitor takes at most 1,000,000")
    page.get_by_label("Everyone in the world").uncheck()
    expect(warning).to_have_text("")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", name="Weekly readers")).to_be_visible()
    expect(page.get_by_text("Saving does not run it")).to_be_visible()
    assert Export.objects.get().list_name == "VIP customers"
    assert not ExportRun.objects.exists()

    page.get_by_role("button", name="Run", exact=True).click()
    progress = page.get_by_role("progressbar")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#export-live")).to_contain_text("Successful")
    expect(page.locator(".count-sent")).to_have_text("7")
    expect(page.locator(".count-skipped")).to_have_text("1")
    assert len(backend.lists["list-vip"]) == 7


FIRST_LINE_OF_TEXT = """(element, text) => {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.data.indexOf(text);
        if (at < 0) continue;
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + 1);
        return range.getBoundingClientRect().top;
    }
    return null;
}"""


def assert_on_one_line(box, label, text: str) -> None:
    """The box and the first line of ``text`` in its label are on the same line."""
    box_area = box.bounding_box()
    text_top = label.evaluate(FIRST_LINE_OF_TEXT, text)
    assert text_top is not None and abs(box_area["y"] - text_top) < 16, (box_area, text_top)


def test_an_administrator_sets_a_weekly_schedule_with_two_times_by_keyboard(
    page: Page, live_server, alice
):
    log_in(page, live_server.url, "alice")
    page.get_by_role("link", name="System").click()
    page.get_by_role("link", name="Schedule").click()
    page.get_by_label("Scheduled refresh is on").check()
    page.get_by_label("Weekly").check()
    page.get_by_label("Monday").check()
    page.get_by_label("Thursday").check()
    page.get_by_label("Time zone").select_option("Europe/Oslo")
    page.get_by_label("Time 1").fill("06:30")
    page.get_by_role("button", name="Add another time").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Time 2")).to_be_focused()
    page.keyboard.type("1815")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text("Schedule saved")).to_be_visible()
    schedule = RefreshSchedule.load()
    assert (schedule.weekdays, schedule.time_zone) == ([1, 4], "Europe/Oslo")
    assert schedule.times == ["06:30", "18:15"]
    assert PeriodicTask.objects.filter(name__startswith="Scheduled refresh").count() == 2
