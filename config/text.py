"""Text helpers shared by the import and the destinations."""

from __future__ import annotations

import unicodedata

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
