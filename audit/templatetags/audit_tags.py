"""The Audit log page's reading of entries."""

from __future__ import annotations

from django import template

from audit import labels

register = template.Library()


@register.filter
def readable_changes(entry) -> list:
    return labels.readable_changes(entry)
