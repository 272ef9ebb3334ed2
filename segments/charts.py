"""Member-count history drawn as inline SVG on the server: no chart library, nothing to load."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

CHART_WIDTH, CHART_HEIGHT, CHART_PADDING = 640, 180, 36
SPARK_WIDTH, SPARK_HEIGHT = 96, 22


def _points(counts: Sequence[int], width: float, height: float, left: float, top: float) -> str:
    """Polyline points for the counts, scaled into the box (a flat line sits in the middle)."""
    low, high = min(counts), max(counts)
    spread = high - low
    step = width / (len(counts) - 1) if len(counts) > 1 else 0
    points = []
    for index, count in enumerate(counts):
        y = top + height / 2 if spread == 0 else top + height - (count - low) / spread * height
        x = left + index * step if len(counts) > 1 else left + width / 2
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


def history_chart(history: Sequence) -> SafeString:
    """An SVG line chart of the member count after each refresh, or "" without history."""
    if not history:
        return mark_safe("")
    counts = [refresh.member_count for refresh in history]
    inner_width = CHART_WIDTH - 2 * CHART_PADDING
    inner_height = CHART_HEIGHT - 2 * CHART_PADDING
    points = _points(counts, inner_width, inner_height, CHART_PADDING, CHART_PADDING)
    first, last = history[0], history[-1]
    description = _(
        "Members after each of the last %(refreshes)s refreshes: from %(first)s on %(start)s "
        "to %(last)s on %(end)s; lowest %(low)s, highest %(high)s."
    ) % {
        "refreshes": len(history),
        "first": number_format(counts[0], force_grouping=True),
        "last": number_format(counts[-1], force_grouping=True),
        "start": date_format(first.refreshed_at, "SHORT_DATETIME_FORMAT"),
        "end": date_format(last.refreshed_at, "SHORT_DATETIME_FORMAT"),
        "low": number_format(min(counts), force_grouping=True),
        "high": number_format(max(counts), force_grouping=True),
    }
    dots = "".join(
        f'<circle cx="{point.split(",")[0]}" cy="{point.split(",")[1]}" r="3" />'
        for point in points.split()
    )
    return format_html(
        '<svg class="history-chart" id="history-chart" role="img" viewBox="0 0 {w} {h}" '
        'width="{w}" height="{h}" aria-labelledby="history-chart-title">'
        '<title id="history-chart-title">{description}</title>'
        '<line class="axis" x1="{p}" y1="{bottom}" x2="{right}" y2="{bottom}" />'
        '<line class="axis" x1="{p}" y1="{p}" x2="{p}" y2="{bottom}" />'
        '<text class="tick" x="{tick_x}" y="{top_text}" text-anchor="end">{high}</text>'
        '<text class="tick" x="{tick_x}" y="{bottom}" text-anchor="end">{low}</text>'
        '<text class="tick" x="{p}" y="{date_y}">{start}</text>'
        '<text class="tick" x="{right}" y="{date_y}" text-anchor="end">{end}</text>'
        '<polyline class="line" points="{points}" />{dots}</svg>',
        w=CHART_WIDTH,
        h=CHART_HEIGHT,
        p=CHART_PADDING,
        right=CHART_WIDTH - CHART_PADDING,
        bottom=CHART_HEIGHT - CHART_PADDING,
        top_text=CHART_PADDING + 4,
        tick_x=CHART_PADDING - 6,
        date_y=CHART_HEIGHT - CHART_PADDING + 18,
        description=description,
        high=number_format(max(counts), force_grouping=True),
        low=number_format(min(counts), force_grouping=True),
        start=date_format(first.refreshed_at, "SHORT_DATE_FORMAT"),
        end=date_format(last.refreshed_at, "SHORT_DATE_FORMAT"),
        points=points,
        dots=mark_safe(dots),  # noqa: S308 - numbers formatted above
    )


def sparkline(counts: Sequence[int]) -> SafeString:
    """A small line of the latest member counts for the segments list, or "" with fewer than 2."""
    if len(counts) < 2:
        return mark_safe("")
    label = _("Members after the last %(refreshes)s refreshes: %(counts)s") % {
        "refreshes": len(counts),
        "counts": ", ".join(number_format(count, force_grouping=True) for count in counts),
    }
    return format_html(
        '<svg class="sparkline" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}">'
        '<title>{label}</title><polyline points="{points}" /></svg>',
        w=SPARK_WIDTH,
        h=SPARK_HEIGHT,
        label=label,
        points=_points(counts, SPARK_WIDTH - 4, SPARK_HEIGHT - 4, 2, 2),
    )


def sparklines(counts_by_segment: dict[int, list[int]]) -> dict[int, SafeString]:
    return {segment_id: sparkline(counts) for segment_id, counts in counts_by_segment.items()}
