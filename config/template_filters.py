"""Template filters every template has (``TEMPLATES`` ``builtins``)."""

from __future__ import annotations

from django import template

from config import translation

register = template.Library()


@register.filter
def shown(text: str) -> str:
    """A stored message (``config.translation.stored``) in the reader's language."""
    return translation.shown(text)
