"""A batch is converted column by column (``text_column``, ``json_column``): exactly what
converting each value on its own (``as_text``, ``as_field_value``) gives, and the same rows
rejected for the same reasons."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest

from sources.kinds.base import (
    BOOLEAN,
    DATE,
    DATETIME,
    NUMBER,
    TEXT,
    ValueDoesNotFit,
    as_field_value,
    as_text,
    json_column,
    text_column,
)

PARIS = dt.timezone(dt.timedelta(hours=1))
COLUMNS = {
    TEXT: [
        ["Ada", "Grace", 'naïve "quoted"\ttab', None],
        ["one", 2, 3.5, True, uuid.UUID(int=7), b"bytes", {"a": [1]}],
        ["ok", "bad\x00nul", b"\xff"],
    ],
    NUMBER: [
        [1, 2, None, 10**20],
        [1.5, 2, -0.0, 1e-7],
        [float("nan"), 1.0],
        [decimal.Decimal("2"), decimal.Decimal("2.50"), True, None],
        ["12"],
    ],
    BOOLEAN: [[True, False, None], [1, 0], [2], ["yes"]],
    DATE: [[dt.date(2026, 1, 31), None], [dt.datetime(2026, 1, 31, 23, 0)], ["2026-01-31"]],
    DATETIME: [
        [dt.datetime(2026, 1, 31, 23, 0), dt.datetime(2026, 1, 31, 23, 0, tzinfo=PARIS), None],
        [dt.date(2026, 2, 1)],
        [3],
    ],
}


def one_by_one(values, field_type, prefix):
    entries, problems = [], {}
    for index, value in enumerate(values):
        try:
            kept = as_field_value(value, field_type)
        except ValueDoesNotFit as error:
            entries.append("")
            problems[index] = error.args[0]
            continue
        entries.append("" if kept is None else prefix + json.dumps(kept, ensure_ascii=False))
    return entries, problems


@pytest.mark.parametrize(
    ("field_type", "values"),
    [(field_type, values) for field_type, columns in COLUMNS.items() for values in columns],
)
def test_a_column_converts_as_each_of_its_values_would(field_type, values):
    entries, gaps, problems = json_column(values, field_type, '"score": ')
    expected, expected_problems = one_by_one(values, field_type, '"score": ')
    assert entries == expected
    assert gaps == (None in values)
    assert {row: str(reason) for row, reason in problems.items()} == {
        row: str(reason) for row, reason in expected_problems.items()
    }


def test_a_text_column_converts_as_each_of_its_values_would_and_names_the_rows_that_do_not_fit():
    values = ["C1", None, 7, "nul\x00", b"\xff", dt.datetime(2026, 1, 1, 12, 0)]
    texts, problems = text_column(values)
    assert texts == ["C1", "", "7", "", "", as_text(values[5])]
    assert set(problems) == {3, 4}
    assert text_column(["a", None, "b"]) == (["a", "", "b"], {})


def test_a_column_of_nothing_but_empty_values_has_no_entries():
    assert json_column([None, None], NUMBER, '"n": ') == (["", ""], True, {})
