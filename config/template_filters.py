"""Template filters and tags every template has (``TEMPLATES`` ``builtins``)."""

from __future__ import annotations

import datetime as dt

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from config import translation

register = template.Library()


@register.filter
def shown(text: str) -> str:
    """A stored message (``config.translation.stored``) in the reader's language."""
    return translation.shown(text)


@register.filter
def when(moment: dt.datetime | dt.date | None) -> str:
    """The one way a page shows a moment: how long ago (or how soon) it is, with the date and
    time in the reader's format and time zone on hover and in ``<time datetime>``. A day
    without a time is shown as a date. Nothing for no moment (the template says "Never")."""
    if not moment:
        return ""
    if not isinstance(moment, dt.datetime):
        return format_html(
            '<time datetime="{}">{}</time>',
            moment.isoformat(),
            formats.date_format(moment, "DATE_FORMAT"),
        )
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    day = formats.date_format(local, "DATE_FORMAT")
    absolute = f"{day}, {local:%H:%M} {local.tzname() or ''}".strip()
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(timespec="seconds"),
        absolute,
        naturaltime(moment),
    )


@register.simple_tag(takes_context=True)
def sort_header(context, key: str, label: str, css_class: str = "") -> SafeString:
    """A list's column header that sorts by ``key`` (``core.listing.Sorting``): a link to the
    same list sorted by it (the other way round when it already is), keeping the search and
    filters and starting again at the first page; ``aria-sort`` tells which column is sorted."""
    current = context.get("sort", "")
    params = context["request"].GET.copy()
    for paging in ("page", "before"):
        params.pop(paging, None)
    params["sort"] = f"-{key}" if current == key else key
    state = {key: "ascending", f"-{key}": "descending"}.get(current)
    return format_html(
        '<th scope="col"{}{}><a class="sort" href="?{}">{} <span class="sort-arrow" '
        'aria-hidden="true">{}</span></a></th>',
        format_html(' class="{}"', css_class) if css_class else "",
        format_html(' aria-sort="{}"', state) if state else "",
        params.urlencode(),
        label,
        {"ascending": "▲", "descending": "▼"}.get(state or "", "↕"),
    )
