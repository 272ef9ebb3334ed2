"""Streamed CSV downloads: each row is written as it is read, so memory stays flat.

Every CSV the application produces goes through ``streaming_csv`` (or at least ``csv_safe``), so
that no cell a user or an imported file supplied runs as a formula in a spreadsheet program."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from django.http import StreamingHttpResponse

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """Keep spreadsheet programs from running a cell as a formula (CSV injection): a text that
    starts with ``= + - @``, a tab or a carriage return gets a leading single quote. Numbers
    and ``None`` pass unchanged; anything else is written as its text, neutralised the same."""
    if value is None or isinstance(value, int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def streaming_csv(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> StreamingHttpResponse:
    """A UTF-8 CSV download (with BOM, for spreadsheet programs) streamed from ``rows``."""
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow([csv_safe(name) for name in header])
        for row in rows:
            yield writer.writerow([csv_safe(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
