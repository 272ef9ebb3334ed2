"""Who to ask: the administrators' names, for pages that tell a user what only they may do."""

from __future__ import annotations

from django import template

from accounts import selectors

register = template.Library()


@register.simple_tag
def administrator_names() -> list[str]:
    """``{% administrator_names as names %}``"""
    return selectors.administrator_names()
