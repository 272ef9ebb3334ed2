"""Shortening text at a character boundary (config/text.py)."""

from __future__ import annotations

import pytest

from config.text import shortened


def test_text_that_fits_is_returned_unchanged():
    assert shortened("Ingrid", 6) == "Ingrid"


def test_text_is_cut_to_the_limit_in_characters_not_bytes():
    assert shortened("王" * 300, 200) == "王" * 200


@pytest.mark.parametrize(
    ("value", "limit", "kept"),
    [
        ("Zoe\u0301", 3, "Zo"),  # a combining acute accent stays with its e
        ("ab\U0001f44d\U0001f3fd", 3, "ab"),  # a thumbs-up keeps its skin tone
        ("a\U0001f469\u200d\U0001f467", 2, "a"),  # never a cut right before a zero-width joiner
        ("a\U0001f469\u200d\U0001f467", 3, "a"),  # nor right after one
        ("a\U0001f1f3\U0001f1f4\U0001f1eb\U0001f1f7", 2, "a"),  # half a flag goes
        ("a\U0001f1f3\U0001f1f4\U0001f1eb\U0001f1f7", 4, "a\U0001f1f3\U0001f1f4"),  # one flag
        ("a\u2764\ufe0f", 2, "a"),  # a heart keeps its emoji presentation selector
        ("line\r\nnext", 5, "line"),
    ],
)
def test_a_cut_never_separates_a_character_from_what_belongs_to_it(value, limit, kept):
    assert shortened(value, limit) == kept
