"""Every CSV we produce neutralises cells a spreadsheet program would run as a formula."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from core.csv_stream import csv_safe, streaming_csv


@pytest.mark.parametrize(
    "cell",
    ["=1+1", "+SUM(A1)", "-2+3", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x")'],
)
def test_a_text_that_starts_a_formula_gets_a_leading_quote(cell):
    assert csv_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["ann@example.com", "", " =1", "1=1", "Ann-Marie", "'=1"])
def test_other_texts_are_unchanged(cell):
    assert csv_safe(cell) == cell


def test_numbers_and_none_are_unchanged_and_other_values_are_neutralised_as_text():
    assert csv_safe(-5) == -5
    assert csv_safe(2.5) == 2.5
    assert csv_safe(None) is None
    assert csv_safe(Decimal("-1")) == "'-1"


def test_the_streamed_file_neutralises_the_header_and_every_cell():
    response = streaming_csv(
        "out.csv", ["customer_id", "=header"], [["=c1", "+x"], ["c2", "@y"], [3, "\rz"]]
    )
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"), newline="")))
    assert rows == [
        ["customer_id", "'=header"],
        ["'=c1", "'+x"],
        ["c2", "'@y"],
        ["3", "'\rz"],
    ]
    assert response["Content-Disposition"] == 'attachment; filename="out.csv"'


def test_no_other_module_writes_csv_past_the_helper():
    """A new CSV download (the audit log, say) must use ``streaming_csv``, not its own writer."""
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.BASE_DIR)
    skipped = {".venv", "tests", "bench", "fakes", "node_modules"}
    writers = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if not skipped & set(path.relative_to(root).parts)
        and ("csv.writer(" in (text := path.read_text()) or "csv.DictWriter(" in text)
    ]
    assert writers == ["core/csv_stream.py"]
