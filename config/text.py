"""Text helpers shared by the import, the destinations and whatever takes text in."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

_ZERO_WIDTH_JOINER = "\u200d"
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
_EXTENDING_RANGES = (
    range(0xFE00, 0xFE10),  # variation selectors (text / emoji presentation)
    range(0x1F3FB, 0x1F400),  # emoji skin-tone modifiers
    range(0xE0020, 0xE0080),  # tag characters (subdivision flags)
    range(0xE0100, 0xE01F0),  # variation selectors supplement
    range(0x1160, 0x1200),  # Hangul medial vowels and final consonants
)


def shortened(value: str, limit: int) -> str:
    """``value`` cut to at most ``limit`` characters (code points), never inside a character.

    A cut that would separate a base character from what belongs to it (combining accents,
    emoji modifiers and variation selectors, a zero-width-joiner sequence, half of a flag)
    moves back to before that base character, so the kept text shows no broken glyph. This
    approximates Unicode grapheme boundaries with the standard library only.
    """
    if len(value) <= limit:
        return value
    cut = max(limit, 0)
    while cut > 0 and _splits_a_character(value, cut):
        cut -= 1
    return value[:cut]


def _splits_a_character(value: str, cut: int) -> bool:
    before, after = value[cut - 1], value[cut]
    if before == _ZERO_WIDTH_JOINER or _extends(after):
        return True
    if before == "\r" and after == "\n":
        return True
    if ord(before) in _REGIONAL_INDICATORS and ord(after) in _REGIONAL_INDICATORS:
        run = 0
        while cut - run > 0 and ord(value[cut - run - 1]) in _REGIONAL_INDICATORS:
            run += 1
        return run % 2 == 1  # an odd run before the cut: the cut halves a flag
    return False


def _extends(character: str) -> bool:
    if character == _ZERO_WIDTH_JOINER or unicodedata.category(character) in ("Mn", "Me", "Mc"):
        return True
    code = ord(character)
    return any(code in extending for extending in _EXTENDING_RANGES)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> str | None:
    """A lone surrogate in ``text`` described for a person, or None.

    A JSON escape such as ``\\ud800`` without its other half makes one: it is half of a
    character, has no UTF-8 form, and can be neither stored nor shown.
    """
    found = _LONE_SURROGATE.search(text)
    if found is None:
        return None
    return _("a lone surrogate (\\u%(code)s), half of a character without its other half") % {
        "code": f"{ord(found.group()):04x}"
    }


def unstorable_character(text: str) -> str | None:
    """What in ``text`` PostgreSQL cannot store (NUL, a lone surrogate), described, or None."""
    if "\x00" in text:
        return _("a NUL character (code 0)")
    return lone_surrogate(text)


@dataclass(frozen=True)
class Unstorable:
    """Where in JSON data something cannot be taken in, and what it is."""

    #: A dotted path such as ``records.3.email``; "" for the whole.
    path: str
    #: What is wrong, for a person (from the check), or None when it is nested too deep.
    problem: str | None


def unstorable_in(
    data: Any, *, max_depth: int, check: Callable[[str], str | None] = unstorable_character
) -> Unstorable | None:
    """The first place in JSON data whose text (a key or a value) ``check`` refuses, or where
    lists and objects nest deeper than ``max_depth``; None when there is none. Goes through the
    data without recursion, so any depth is safe."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if problem := check(value):
                return Unstorable(path, problem)
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                return Unstorable(path, None)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            children = []
            for key, item in items:
                child = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and (problem := check(key)):
                    return Unstorable(path, problem)  # the key itself cannot be shown
                children.append((item, child, depth + 1))
            stack.extend(reversed(children))
    return None
