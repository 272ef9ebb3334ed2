"""The filters and tags every template has (config/template_filters.py): one date format, and
column headers that sort."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.template import Context, Template
from django.test import RequestFactory, override_settings
from django.utils import formats, timezone, translation

from config.template_filters import when


def test_a_moment_reads_as_how_long_ago_with_the_date_and_time_on_hover():
    moment = timezone.now() - dt.timedelta(hours=3)
    with override_settings(TIME_ZONE="Europe/Oslo"), timezone.override("Europe/Oslo"):
        html = when(moment)
    local = moment.astimezone(zoneinfo.ZoneInfo("Europe/Oslo"))
    assert html.startswith(f'<time datetime="{local.isoformat(timespec="seconds")}"')
    day = formats.date_format(local, "DATE_FORMAT")
    assert f'title="{day}, {local:%H:%M} {local.tzname()}"' in html
    assert ">3\xa0hours ago</time>" in html


def test_a_moment_to_come_reads_as_how_soon():
    assert "from now" in when(timezone.now() + dt.timedelta(days=2, minutes=1))


def test_the_relative_time_is_in_the_readers_language():
    with translation.override("fr"):
        assert "il y a" in when(timezone.now() - dt.timedelta(minutes=5))


def test_a_day_without_a_time_is_a_date_and_nothing_is_nothing():
    assert when(dt.date(2026, 5, 17)) == '<time datetime="2026-05-17">May 17, 2026</time>'
    assert when(None) == ""


def render_header(query: str, sort: str) -> str:
    request = RequestFactory().get(f"/segments/?{query}")
    template = Template('{% sort_header "name" "Name" %}')
    return template.render(Context({"request": request, "sort": sort}))


def test_a_header_links_to_its_sort_keeping_the_search_and_starting_at_page_one():
    html = render_header("q=gold&page=3&sort=members", "members")
    assert 'href="?q=gold&amp;sort=name"' in html
    assert "aria-sort" not in html


def test_the_sorted_columns_header_says_so_and_links_to_the_other_direction():
    ascending = render_header("sort=name", "name")
    assert 'aria-sort="ascending"' in ascending and 'href="?sort=-name"' in ascending
    descending = render_header("sort=-name", "-name")
    assert 'aria-sort="descending"' in descending and 'href="?sort=name"' in descending


def test_a_header_escapes_what_it_shows():
    html = Template('{% sort_header "name" label %}').render(
        Context({"request": RequestFactory().get("/"), "label": "<b>Name</b>"})
    )
    assert "&lt;b&gt;Name&lt;/b&gt;" in html
