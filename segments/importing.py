"""Import profiles from CSV: streamed, validated, upserted by customer id in bulk.

The file is never held in memory: rows are read 5,000 at a time, checked column by column
(``_staged``: a row is looked at on its own only when a check over its batch finds something)
and streamed into the database (``segments.staging`` on PostgreSQL: ``COPY`` into a staging
table, then one set-based upsert that writes only new and changed profiles; batched
``INSERT ... ON CONFLICT`` on SQLite). A malformed row is rejected with its line number and
the reason; the valid rows are kept. A name longer than its column is shortened and kept, with
a warning: only a customer id or e-mail that does not fit rejects the row, because a shortened
one would name someone else. An e-mail fits when a service can take it (RFC 5321: 254
characters, 64 before the @); one that does not look like an address is kept with a warning,
and exports skip it.

``import_rows`` (rows of text under a header: the CSV import, the API's bulk upsert through
``import_json_records``), ``import_columns`` (profile sources) and ``import_records`` (the demo
seeder) are the ways in for profiles: every row passes the same checks before the same upsert.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, compress, islice
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from operator import itemgetter, methodcaller, not_
from typing import IO, Any, NamedTuple

from django.db import connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from config.text import shortened
from segments import line_hashes, origins, staging
from segments.catalogue import (
    TooManyFields,
    check_field_limit,
    fields_admitted,
    refresh_field_catalogue,
)
from segments.models import Profile, ProfileField
from segments.rules import NUMBER_PATTERN
from segments.staging import StagedRows

FIXED_COLUMNS = ("customer_id", "email", "first_name", "last_name")
#: Fixed fields that identify the person: too long, the row is rejected rather than shortened.
IDENTIFYING_COLUMNS = ("customer_id", "email")
SHORTENED_COLUMNS = tuple(name for name in FIXED_COLUMNS if name not in IDENTIFYING_COLUMNS)
MAX_LENGTHS = {name: Profile._meta.get_field(name).max_length for name in FIXED_COLUMNS}
_SHORTENED_LIMITS = tuple((name, MAX_LENGTHS[name]) for name in SHORTENED_COLUMNS)
MAX_LISTED_REJECTIONS = 10_000
#: Every warning of 10,000 rows (the API's largest call): two names and an address each.
MAX_LISTED_WARNINGS = 30_000
#: The longest address a service takes (RFC 5321: a 256-character path, brackets included) and
#: the longest part before the @.
MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
#: What exports skip as "invalid e-mail" (``exports.recipients.EMAIL_PATTERN``, the same).
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Rows checked and sent to the database at a time.
BATCH_ROWS = 5_000
#: How many of the header's names a message about the header lists.
SHOWN_HEADER_NAMES = 20
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
#: Text that cannot be stored: bytes that are not UTF-8 (read as U+DC80..U+DCFF), or a lone
#: surrogate from a JSON escape.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: What ends a line when reading a file (Python's universal newlines).
_LINE_BREAK = re.compile("\r\n|\r|\n")
_NUMBER = NUMBER_PATTERN
_NUMBER_TEXT = NUMBER_PATTERN.pattern.removeprefix("^").removesuffix("$")


def _column_of(pattern: str) -> re.Pattern:
    """A column of values each matching ``pattern``, joined by NULs (no kept value has one)."""
    return re.compile(f"(?:{pattern})(?:\x00(?:{pattern}))*")


_NUMBERS = _column_of(_NUMBER_TEXT)
#: Numbers that Python prints as written (``str(int(value))``, ``repr(float(value))``):
#: integers, and decimals of at most 14 digits not ending in 0 unless in ".0" (nor below 0.0001).
_PRINTED_INTEGERS = _column_of(r"0|-?[1-9][0-9]*")
_PRINTED_DECIMALS = _column_of(r"-?(?:[1-9][0-9]{0,5}|0(?!\.0000))\.(?:[0-9]{0,7}[1-9]|0)")
#: ``_ISO_DATE`` with ASCII digits only (a subset: other dates are classified one by one).
_DATES = _column_of(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_NUMBER_START = frozenset("-0123456789")
_BOOLEAN_START = frozenset("tTfF")
_BOOLEANS = frozenset({"true", "false"})
#: A value starting with none of these, nor with a digit, is text (``_classify``).
_NOT_TEXT_START = _NUMBER_START | _BOOLEAN_START
csv.field_size_limit(1_000_000)


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (no header, no customer id column, ...)."""


class ProfileRecord(NamedTuple):
    line: int
    customer_id: str
    email: str
    first_name: str
    last_name: str
    attributes: dict


def _listed_id() -> str:
    """The customer id a problem is listed with (the download of the problem rows); not
    compared, since a problem belongs to its line."""
    return dataclasses.field(default="", compare=False)  # type: ignore[return-value]


@dataclass
class RejectedRow:
    line: int
    reason: str
    customer_id: str = _listed_id()


@dataclass
class ShortenedValue:
    """A warning: the value of ``field`` on ``line`` did not fit and its start was kept."""

    line: int
    field: str
    original_length: int
    kept_length: int
    customer_id: str = _listed_id()


@dataclass
class UnusableAddress:
    """A warning: the e-mail on ``line`` does not look like an address. The profile is kept
    (it may be corrected later); exports skip it."""

    line: int
    field: str = "email"
    customer_id: str = _listed_id()


@dataclass
class MissingAddress:
    """A warning: the row on ``line`` has no e-mail. The profile is kept; exports skip it."""

    line: int
    field: str = "email"
    kind: str = "missing_email"
    customer_id: str = _listed_id()


@dataclass
class RepeatedCustomerId:
    """A warning: the customer id on ``line`` was already on ``first_line`` of the same file;
    the later row is what is kept (as an import of the two files one after the other would)."""

    line: int
    first_line: int
    field: str = "customer_id"
    kind: str = "repeated_customer_id"
    customer_id: str = _listed_id()


Warning = ShortenedValue | UnusableAddress | MissingAddress | RepeatedCustomerId


def warning_message(warning: Warning) -> str:
    """What the warning says, in the current language (the import page, the API's results)."""
    if isinstance(warning, ShortenedValue):
        return _("Shortened from %(original)s to %(kept)s characters.") % {
            "original": f"{warning.original_length:,}",
            "kept": f"{warning.kept_length:,}",
        }
    if isinstance(warning, MissingAddress):
        return _("There is no e-mail address: the profile is kept, exports skip it.")
    if isinstance(warning, RepeatedCustomerId):
        return _(
            "This customer id is also on line %(line)s of the file: this later row is the one kept."
        ) % {"line": f"{warning.first_line:,}"}
    return _("This does not look like an e-mail address: the profile is kept, exports skip it.")


def warning_problem(warning: Warning) -> str:
    """What is wrong with the row, in the current language (the problem rows' download)."""
    if isinstance(warning, ShortenedValue):
        return _("Longer than the field holds: %(original)s characters.") % {
            "original": f"{warning.original_length:,}"
        }
    if isinstance(warning, MissingAddress):
        return _("There is no e-mail address.")
    if isinstance(warning, RepeatedCustomerId):
        return _("The same customer id is also on line %(line)s.") % {
            "line": f"{warning.first_line:,}"
        }
    return _("This does not look like an e-mail address.")


def warning_outcome(warning: Warning) -> str:
    """What happens to the row, in the current language (the problem rows' download)."""
    if isinstance(warning, ShortenedValue):
        return _("Kept, with its first %(kept)s characters.") % {"kept": f"{warning.kept_length:,}"}
    if isinstance(warning, RepeatedCustomerId):
        return _("The last row with this customer id is the one kept.")
    return _("Kept; exports skip the profile until it has a valid e-mail address.")


def listed_customer_id(value: str) -> str:
    """A customer id as a problem row lists it: empty when it cannot be stored or shown whole
    (too long, not UTF-8, a NUL), since a cut or mangled id would name someone else."""
    value = value.strip()
    if len(value) > MAX_LENGTHS["customer_id"] or "\x00" in value or _SURROGATE.search(value):
        return ""
    return value


def warning_from_stored(stored: dict) -> Warning:
    """A warning as an import's report keeps it (``vars(warning)``), made whole again."""
    kinds = {"missing_email": MissingAddress, "repeated_customer_id": RepeatedCustomerId}
    if stored.get("kind") in kinds:
        return kinds[stored["kind"]](**stored)
    if "kept_length" in stored:
        return ShortenedValue(**stored)
    return UnusableAddress(**stored)


@dataclass
class ImportReport:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejected_rows: list[RejectedRow] = field(default_factory=list)
    warned: int = 0
    warnings: list[Warning] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def reject(self, line: int, reason: str, customer_id: str = "") -> None:
        self.rejected += 1
        if len(self.rejected_rows) < MAX_LISTED_REJECTIONS:
            self.rejected_rows.append(RejectedRow(line, reason, listed_customer_id(customer_id)))

    def warn(self, warning: Warning) -> None:
        self.warned += 1
        if len(self.warnings) < MAX_LISTED_WARNINGS:
            self.warnings.append(warning)


@dataclass
class ColumnMap:
    """Which CSV header holds each fixed field; every other column becomes an attribute."""

    customer_id: str = "customer_id"
    email: str = "email"
    first_name: str = "first_name"
    last_name: str = "last_name"


@dataclass
class _AttributeTypes:
    """Infers each attribute column's type from the values that stream past."""

    seen: dict[str, set[str]] = field(default_factory=dict)

    def inferred(self) -> dict[str, str]:
        return {name: _one_type(kinds) for name, kinds in self.seen.items()}


def _one_type(kinds: set[str]) -> str:
    """The column's type: dates and date-times together are date-times; other mixes are text."""
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds == {ProfileField.DataType.DATE, ProfileField.DataType.DATETIME}:
        return ProfileField.DataType.DATETIME
    return ProfileField.DataType.TEXT


def _classify(value: str) -> tuple[str | int | float, str]:
    """The value as stored in the attributes JSON, and its kind. Hot path: every cell."""
    if value[0] in _NUMBER_START and _NUMBER.match(value):
        return (float(value) if "." in value else int(value)), ProfileField.DataType.NUMBER
    if value[0].isdigit() and _ISO_DATE.match(value):
        if len(value) > 10:
            return value, ProfileField.DataType.DATETIME
        return value, ProfileField.DataType.DATE
    if value[0] in _BOOLEAN_START and value.lower() in _BOOLEANS:
        return value, ProfileField.DataType.BOOLEAN
    return value, ProfileField.DataType.TEXT


def import_csv(
    stream: IO[bytes], column_map: ColumnMap | None = None, *, recount_fields: bool = True
) -> ImportReport:
    """Import a UTF-8 CSV file (with or without BOM) from a binary stream. On PostgreSQL, the
    lines that made their profiles as they are are left out unread (``segments.line_hashes``).
    ``recount_fields=False`` leaves the field catalogue's counts to the caller."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = line_hashes.CsvLines(text) if connection.vendor == "postgresql" else csv.reader(text)
    return _import_table(
        reader, column_map or ColumnMap(), recount_fields=recount_fields, origin=origins.IMPORT
    )


def check_csv_header(stream: IO[bytes], column_map: ColumnMap | None = None) -> None:
    """Read only the header row of a CSV file and raise ``ImportFileError`` when its columns
    would take the field catalogue over ``PROFILE_FIELDS_MAX``: the upload page refuses such
    a file at once instead of queueing it. Other header problems are left to the import, which
    reports them; the import checks the limit again before it stores anything."""
    column_map = column_map or ColumnMap()
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        header = next(csv.reader(text), [])
    except csv.Error:
        return
    finally:
        text.detach()
    fixed = {getattr(column_map, name).strip().lower() for name in FIXED_COLUMNS}
    try:
        check_field_limit(
            name for name in (cell.strip() for cell in header) if name and name.lower() not in fixed
        )
    except TooManyFields as error:
        raise ImportFileError(str(error)) from error


def import_rows(
    header: list[str],
    rows: Iterable[list[str]],
    outcomes: dict[str, str] | None = None,
    *,
    recount_fields: bool = True,
    origin: origins.Origin = origins.API,
) -> ImportReport:
    """Import rows of text under ``header`` exactly as a CSV file of them would be imported
    (the API's bulk upsert): the same checks, the same upsert. Lines are numbered as in a
    file, the header being line 1. ``outcomes``, when given, receives each customer id's
    outcome: ``CREATED``, ``UPDATED`` or ``UNCHANGED``. ``recount_fields=False`` leaves the
    field catalogue's counts to the caller (``segments.catalogue.recount_fields``). The
    fields written are recorded as set by ``origin`` (``segments.origins``)."""
    return _import_table(
        _RowReader(chain([header], rows)), ColumnMap(), outcomes, recount_fields, origin
    )


CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
#: The outcome of a record of a bulk upsert that was not saved (``import_json_records``).
REJECTED = "rejected"


class _RowReader:
    """Rows already split into values, read like a ``csv.reader`` (one line per row)."""

    def __init__(self, rows: Iterable[list[str]]):
        self._rows = iter(rows)
        self.line_num = 0

    def __iter__(self) -> _RowReader:
        return self

    def __next__(self) -> list[str]:
        row = next(self._rows)
        self.line_num += 1
        return row


def _import_table(
    reader,
    column_map: ColumnMap,
    outcomes: dict[str, str] | None = None,
    recount_fields: bool = True,
    origin: origins.Origin = origins.IMPORT,
) -> ImportReport:
    report = ImportReport()
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(
            _("The file is empty. It needs a header row naming the columns.")
        ) from None
    except csv.Error as error:
        raise ImportFileError(
            _("The header row could not be read: %(error)s") % {"error": error}
        ) from None
    header = [name.strip() for name in header]
    if any(_SURROGATE.search(name) for name in header):
        raise ImportFileError(
            _("The header row is not UTF-8 text. Save the file as UTF-8 (CSV) and try again.")
        )
    if any("\x00" in name for name in header):
        raise ImportFileError(
            _("The header row contains a NUL character (code 0). Remove it and try again.")
        )
    positions = _fixed_column_positions(header, column_map)
    attribute_columns = [
        (index, name)
        for index, name in enumerate(header)
        if index not in positions.values() and name
    ]
    attribute_types = _AttributeTypes()
    csv_lines = reader if isinstance(reader, line_hashes.CsvLines) else None
    try:
        with fields_admitted(name for _index, name in attribute_columns):
            shape = _BatchShape(len(header), positions, attribute_columns, attribute_types)
            if csv_lines is None:
                batches = _staged_batches(reader, shape, report)
            else:
                batches = _hashed_batches(csv_lines, header, column_map, shape, report)
            _store(
                batches,
                set(positions),
                [name for _i, name in attribute_columns],
                report,
                outcomes,
                origin=origin,
                csv_lines=csv_lines,
            )
            # Counts change only where profiles did: a file that changed nothing recounts nothing.
            written = report.created + report.updated > 0
            types = attribute_types.inferred()
            if csv_lines is not None:
                _leave_out_unchanged_types(types, attribute_types, attribute_columns, csv_lines)
            refresh_field_catalogue(types, recount=recount_fields and written)
    except TooManyFields as error:
        raise ImportFileError(str(error)) from error
    return report


def import_records(
    records: Iterable[ProfileRecord],
    attribute_types: dict[str, str],
    *,
    fields: Iterable[str] = FIXED_COLUMNS,
    recount_fields: bool = True,
    origin: origins.Origin = origins.IMPORT,
) -> ImportReport:
    """Import already-parsed records (the demo seeder and the sources use this); the fixed
    ``fields`` are set (a fixed field not named keeps the profile's value), each recorded as
    set by ``origin`` (a source gives its id: ``segments.origins``).

    The records are checked as CSV rows are: no or an over-long customer id or e-mail rejects
    the record, an over-long name is shortened with a warning naming ``record.line``.
    Raises ``TooManyFields`` before storing anything when the attributes would take the
    catalogue over ``PROFILE_FIELDS_MAX``.
    """
    report = ImportReport()
    fixed = {"customer_id", *fields}
    kept = (
        checked
        for record in _count_read(records, report)
        if (checked := _checked(record, report, email_given="email" in fixed)) is not None
    )
    with fields_admitted(attribute_types):
        _store(_records_staged(kept), fixed, list(attribute_types), report, origin=origin)
        refresh_field_catalogue(attribute_types, recount=recount_fields)
    return report


def import_columns(
    staged: StagedRows,
    attribute_types: dict[str, str],
    *,
    fields: Iterable[str] = FIXED_COLUMNS,
    recount_fields: bool = True,
    origin: origins.Origin = origins.IMPORT,
    on_staged: Callable[[Any], None] | None = None,
    insert_new: Callable[[StagedRows], bool] | None = None,
) -> ImportReport:
    """``import_records`` for rows already made into the staging table's columns (the
    sources: values converted column by column from their source types, attributes as JSON
    entries). The same checks as ``_checked``, made column by column; a fixed field not in
    ``fields`` keeps the profile's value (its column in ``staged`` is ignored).

    ``on_staged`` (PostgreSQL) is called with the cursor once the checked rows are in the
    staging table (``segments.staging.STAGING_TABLE``) and before the upsert: it may read
    them, and delete the ones not to be stored (a source's repeated customer ids).
    ``insert_new`` (PostgreSQL) is first given the checked rows: when it returns True, it
    has inserted them all as new profiles (none had one) and nothing is staged."""
    report = ImportReport(rows_read=len(staged))
    fixed = {"customer_id", *fields}
    names = [name for name in FIXED_COLUMNS if name in fixed]
    count = len(staged)
    columns = [
        getattr(staged, name + "s") if name in fixed else [""] * count for name in FIXED_COLUMNS
    ]
    columns += staged.attribute_entries
    rejections: list[tuple[int, str, str]] = []
    lines = staged.lines
    if count:
        emails = columns[1] if "email" in fixed else None
        columns, lines = _identified(columns, lines, 0, emails, rejections)
    for line, reason, customer_id in sorted(rejections):
        report.reject(line, reason, customer_id)
    customer_ids, emails, first_names, last_names = columns[:4]
    warnings: list[tuple[int, int, Warning]] = []
    if "email" in fixed:
        for index in compress(range(len(lines)), map(not_, map(_ADDRESS.match, emails))):
            line, customer_id = lines[index], customer_ids[index]
            kind = MissingAddress if not emails[index] else UnusableAddress
            warnings.append((line, 0, kind(line, customer_id=customer_id)))
    for order, (name, limit) in enumerate(_SHORTENED_LIMITS, start=1):
        if name in fixed and lines:
            values = columns[FIXED_COLUMNS.index(name)]
            _shorten(values, lines, customer_ids, name, limit, order, warnings)
    warnings.sort(key=itemgetter(0, 1))
    for _line, _order, warning in warnings:
        report.warn(warning)
    kept = StagedRows(
        lines, customer_ids, emails, first_names, last_names, columns[4:], staged.gaps
    )
    with fields_admitted(attribute_types):
        if lines and insert_new is not None and insert_new(kept):
            report.created = len(lines)
        else:
            _store(
                [kept] if lines else [],
                set(names),
                list(attribute_types),
                report,
                origin=origin,
                on_staged=on_staged,
            )
        refresh_field_catalogue(attribute_types, recount=recount_fields)
    return report


def _checked(
    record: ProfileRecord, report: ImportReport, *, email_given: bool = True
) -> ProfileRecord | None:
    """The record as it can be kept, names shortened to fit (with a warning each), or None
    when it is rejected (recorded on ``report``). Every record passes here before the upsert."""
    reason = _identity_problem(record.customer_id, record.email)
    if reason:
        report.reject(record.line, reason, record.customer_id)
        return None
    if not record.email:
        if email_given:  # a file without the column leaves the profiles' e-mails as they are
            report.warn(MissingAddress(record.line, customer_id=record.customer_id))
    elif not _ADDRESS.match(record.email):
        report.warn(UnusableAddress(record.line, customer_id=record.customer_id))
    shortened_names = {}
    for name, limit in _SHORTENED_LIMITS:
        value = getattr(record, name)
        if len(value) > limit:
            kept = shortened(value, limit)
            report.warn(
                ShortenedValue(record.line, name, len(value), len(kept), record.customer_id)
            )
            shortened_names[name] = kept
    return record._replace(**shortened_names) if shortened_names else record


def _count_read(records: Iterable[ProfileRecord], report: ImportReport) -> Iterator[ProfileRecord]:
    for record in records:
        report.rows_read += 1
        yield record


def _records_staged(records: Iterable[ProfileRecord]) -> Iterator[StagedRows]:
    """Checked records in batches, their attributes as JSON (the seeder's: a few thousand)."""
    iterator = iter(records)
    while batch := list(islice(iterator, BATCH_ROWS)):
        objects = [json.dumps(record.attributes, ensure_ascii=False) for record in batch]
        yield StagedRows(
            [record.line for record in batch],
            [record.customer_id for record in batch],
            [record.email for record in batch],
            [record.first_name for record in batch],
            [record.last_name for record in batch],
            [[text[1:-1] for text in objects]],  # each object's inside: one entry per row
            gaps=True,
        )


def _fixed_column_positions(header: list[str], column_map: ColumnMap) -> dict[str, int]:
    lowered = [name.lower() for name in header]
    positions = {}
    for fixed in FIXED_COLUMNS:
        wanted = getattr(column_map, fixed).strip().lower()
        if wanted in lowered:
            positions[fixed] = lowered.index(wanted)
    if "customer_id" not in positions:
        raise ImportFileError(
            _(
                "No “%(column)s” column was found. The header row has: %(header)s. "
                "Name the column that holds the customer id."
            )
            % {"column": column_map.customer_id, "header": _listed(header)}
        )
    return positions


def _listed(names: list[str]) -> str:
    """The first names of a header, for a message (a header can have 100,000 columns)."""
    shown = ", ".join(names[:SHOWN_HEADER_NAMES])
    return shown + ", …" if len(names) > SHOWN_HEADER_NAMES else shown


def _staged_batches(reader, shape: _BatchShape, report: ImportReport) -> Iterator[StagedRows]:
    """The file's kept rows, ``BATCH_ROWS`` at a time, checked and made into the staging
    table's columns. Hot path (every row of a million-row file): a batch is checked column by
    column with C-level operations (a join, a count, one regular expression over the whole
    column); only a batch in which such a check finds something is looked at row by row, to
    say which row and why."""
    previous_end = 1
    while True:
        rows, error = _read_rows(reader, BATCH_ROWS)
        if rows:
            lines = _first_lines(rows, previous_end, None if error else reader.line_num)
            staged = _staged(rows, lines, shape, report)
            if staged is not None:
                yield staged
        if error is not None:
            report.rows_read += 1
            report.reject(
                reader.line_num,
                _("The row could not be read as CSV (%(error)s).") % {"error": error},
            )
        elif len(rows) < BATCH_ROWS:
            return
        previous_end = reader.line_num


def _hashed_batches(
    csv_lines: line_hashes.CsvLines,
    header: list[str],
    column_map: ColumnMap,
    shape: _BatchShape,
    report: ImportReport,
) -> Iterator[StagedRows]:
    """``_staged_batches`` for a file read by lines (PostgreSQL): its unchanged lines left
    out, each kept row with its line's hash (None for a row with a warning: it is checked
    again next time, to say so again). One batch (maybe empty) per batch of lines."""
    attribute_positions = [column.index for column in shape.attributes]
    batches = csv_lines.batches(
        BATCH_ROWS,
        line_hashes.line_hasher(header, column_map),
        shape.positions["customer_id"],
        attribute_positions,
        look_up=line_hashes.may_leave_out([name for name in shape.attribute_types]),
    )
    for batch in batches:
        report.rows_read += batch.left_out
        staged = None
        if batch.rows:
            warned: set[int] = set()
            staged = _staged(batch.rows, batch.lines, shape, report, warned)
            if staged is not None:
                staged.line_hashes = _kept_hashes(batch, staged.lines, warned)
        if batch.error is not None:
            line, error = batch.error
            report.rows_read += 1
            reason = _("The row could not be read as CSV (%(error)s).") % {"error": error}
            report.reject(line, reason)
        yield staged or StagedRows([], [], [], [], [], [], line_hashes=[])


def _kept_hashes(
    batch: line_hashes.LineBatch, lines: list[int], warned: set[int]
) -> list[int | None]:
    """The hashes of the rows kept of ``batch`` (on ``lines``), None for a warned row."""
    hashes = batch.hashes
    if lines is batch.lines and lines[-1] - lines[0] == len(lines) - 1:  # the usual batch
        for line in warned:
            hashes[line - lines[0]] = None
        return hashes
    hash_of = dict(zip(batch.lines, hashes, strict=True))
    hash_of.update(dict.fromkeys(warned))
    return list(map(hash_of.__getitem__, lines))


def _leave_out_unchanged_types(
    types: dict[str, str],
    attribute_types: _AttributeTypes,
    attribute_columns: list[tuple[int, str]],
    csv_lines: line_hashes.CsvLines,
) -> None:
    """An attribute with a value on left-out lines only is not retyped: all its values then
    were of a type its field takes (``line_hashes.may_leave_out``). An attribute with no
    value on any line is typed as today (text)."""
    for index, name in attribute_columns:
        if not attribute_types.seen[name] and index in csv_lines.valued_columns:
            types.pop(name, None)


def _read_rows(reader, limit: int) -> tuple[list[list[str]], csv.Error | None]:
    """Up to ``limit`` rows; stops early at a row that cannot be read as CSV, returning its
    error (the rows before it are kept)."""
    rows: list[list[str]] = []
    try:
        rows.extend(islice(reader, limit))
    except csv.Error as error:
        return rows, error
    return rows, None


def _first_lines(rows: list[list[str]], previous_end: int, end: int | None) -> list[int]:
    """The line each row starts on, the rows having been read after line ``previous_end``
    up to line ``end`` (None: unknown). A row is one line unless a quoted value holds line
    breaks (each one more line) or the reader counts lines itself (the API's rows)."""
    if end is not None and end - previous_end == len(rows):
        return list(range(previous_end + 1, end + 1))
    lines = []
    line = previous_end + 1
    for row in rows:
        lines.append(line)
        line += 1 + len(_LINE_BREAK.findall("\x00".join(row)))
    return lines


@dataclass
class _AttributeColumn:
    index: int
    #: ``"name": `` as JSON: what each of the column's values follows in a row's object.
    prefix: str
    #: The kinds of value seen in the column (shared with ``_AttributeTypes``).
    kinds: set[str]


class _BatchShape:
    """Where each field is in the file's rows."""

    def __init__(
        self,
        width: int,
        positions: dict[str, int],
        attribute_columns: list[tuple[int, str]],
        attribute_types: _AttributeTypes,
    ):
        self.width = width
        self.positions = positions
        #: The attributes' names (``_AttributeTypes.seen``'s keys).
        self.attribute_types = dict.fromkeys(name for _index, name in attribute_columns)
        seen = attribute_types.seen
        # In the order PostgreSQL keeps an object's keys (shorter first, then by bytes): the
        # text made here is then the text of the stored object when nothing changed.
        ordered = sorted(attribute_columns, key=lambda column: _jsonb_key_order(column[1]))
        self.attributes = [
            _AttributeColumn(index, encode_basestring(name) + ": ", seen.setdefault(name, set()))
            for index, name in ordered
        ]


def _jsonb_key_order(name: str) -> tuple[int, bytes]:
    encoded = name.encode()
    return len(encoded), encoded


def _staged(
    rows: list[list[str]],
    lines: list[int],
    shape: _BatchShape,
    report: ImportReport,
    warned: set[int] | None = None,
) -> StagedRows | None:
    """One batch of rows checked as ``_checked`` checks a record, column by column;
    ``warned`` receives the lines with a warning."""
    rejections: list[tuple[int, str, str]] = []
    clean = _clean_columns(rows, shape.width)
    joined: list[str] | None = None  # each column's values joined by NULs, while all are kept
    if clean is None:  # a blank row, a row of another width, a NUL or non-UTF-8 text
        rows, lines = _sound_rows(
            rows, lines, shape.width, shape.positions["customer_id"], rejections, report
        )
        columns = [list(map(str.strip, column)) for column in zip(*rows, strict=True)]
    else:
        columns, joined = clean
        report.rows_read += len(rows)
    positions = shape.positions
    if rows:
        emails = columns[positions["email"]] if "email" in positions else None
        identified = _identified(columns, lines, positions["customer_id"], emails, rejections)
        if identified[1] is not lines:
            columns, lines, joined = *identified, None
    for line, reason, customer_id in sorted(rejections):
        report.reject(line, reason, customer_id)
    if not lines:
        return None
    count = len(lines)

    def fixed(name: str) -> list[str]:
        return columns[positions[name]] if name in positions else [""] * count

    emails = fixed("email")
    customer_ids = columns[positions["customer_id"]]
    warnings: list[tuple[int, int, Warning]] = []
    if "email" in positions:
        for index in compress(range(count), map(not_, map(_ADDRESS.match, emails))):
            line, customer_id = lines[index], customer_ids[index]
            kind = MissingAddress if not emails[index] else UnusableAddress
            warnings.append((line, 0, kind(line, customer_id=customer_id)))
    for order, (name, limit) in enumerate(_SHORTENED_LIMITS, start=1):
        if name in positions:
            _shorten(columns[positions[name]], lines, customer_ids, name, limit, order, warnings)
    warnings.sort(key=itemgetter(0, 1))
    for _line, _order, warning in warnings:
        report.warn(warning)
    if warned is not None:
        warned.update(map(itemgetter(0), warnings))
    entries, gaps = _attribute_entries_of(columns, joined, shape.attributes)
    return StagedRows(
        lines,
        customer_ids,
        emails,
        fixed("first_name"),
        fixed("last_name"),
        entries,
        gaps,
    )


def _clean_columns(rows: list[list[str]], width: int) -> tuple[list[list[str]], list[str]] | None:
    """The batch's columns, values stripped, and each joined by NULs, when every row has the
    header's width and no value holds a NUL or text that is not UTF-8; else None (the batch
    is looked at row by row)."""
    if len(rows[0]) != width or len(set(map(len, rows))) != 1:
        return None
    columns = [list(map(str.strip, column)) for column in zip(*rows, strict=True)]
    joined = ["\x00".join(column) for column in columns]
    for text in joined:
        if text.count("\x00") != len(rows) - 1:
            return None
        try:
            text.encode()  # fails on a surrogate; much faster than searching for one
        except UnicodeEncodeError:
            return None
    return columns, joined


def _sound_rows(
    rows: list[list[str]],
    lines: list[int],
    width: int,
    customer_id_position: int,
    rejections: list[tuple[int, str, str]],
    report: ImportReport,
) -> tuple[list[list[str]], list[int]]:
    """The rows that can be read as the header's columns; a blank row is skipped."""
    kept_rows, kept_lines = [], []
    for row, line in zip(rows, lines, strict=True):
        if not row:
            continue
        report.rows_read += 1
        reason = _row_problem(row, width)
        if reason:
            at = customer_id_position
            rejections.append((line, reason, row[at].strip() if at < len(row) else ""))
        else:
            kept_rows.append(row)
            kept_lines.append(line)
    return kept_rows, kept_lines


def _identified(
    columns: list[list[str]],
    lines: list[int],
    customer_id_position: int,
    emails: list[str] | None,
    rejections: list[tuple[int, str, str]],
) -> tuple[list[list[str]], list[int]]:
    """The columns without the rows whose customer id or e-mail cannot be kept."""
    customer_ids = columns[customer_id_position]
    if (
        "" not in customer_ids
        and max(map(len, customer_ids)) <= MAX_LENGTHS["customer_id"]
        # No address this short can be too long, or have too long a part before its @.
        and (emails is None or max(map(len, emails)) <= MAX_LOCAL_PART_LENGTH)
    ):
        return columns, lines
    kept = []
    for index, customer_id in enumerate(customer_ids):
        reason = _identity_problem(customer_id, emails[index] if emails is not None else "")
        if reason:
            rejections.append((lines[index], reason, customer_id))
        else:
            kept.append(index)
    if len(kept) == len(lines):
        return columns, lines
    return [[column[i] for i in kept] for column in columns], [lines[i] for i in kept]


def _shorten(
    values: list[str],
    lines: list[int],
    customer_ids: list[str],
    name: str,
    limit: int,
    order: int,
    warnings: list[tuple[int, int, Warning]],
) -> None:
    """Shorten (in place) the values longer than ``limit``, with a warning each."""
    if max(map(len, values)) <= limit:
        return
    for index, value in enumerate(values):
        if len(value) > limit:
            kept = shortened(value, limit)
            line = lines[index]
            shortened_value = ShortenedValue(line, name, len(value), len(kept), customer_ids[index])
            warnings.append((line, order, shortened_value))
            values[index] = kept


def _attribute_entries_of(
    columns: list[list[str]], joined: list[str] | None, attributes: list[_AttributeColumn]
) -> tuple[list[list[str]], bool]:
    """Per attribute with a value in the batch, ``"name": value`` per row (JSON, "" where
    the value is empty), and whether any is empty (``StagedRows.attribute_entries``)."""
    entry_columns = []
    gaps = False
    for attribute in attributes:
        values = columns[attribute.index]
        text = joined[attribute.index] if joined is not None else None
        entries, has_gaps = _attribute_entries(values, text, attribute)
        if entries is not None:
            entry_columns.append(entries)
            gaps = gaps or has_gaps
    return entry_columns, gaps


def _attribute_entries(
    values: list[str], joined: str | None, attribute: _AttributeColumn
) -> tuple[list[str] | None, bool]:
    """``"name": value`` per row ("" where the value is empty, None when all are), and
    whether any is empty. The value of each is ``_classify``'s (a number as a number)."""
    has_gaps = "" in values
    if has_gaps and not any(values):
        return None, True
    distinct = set(values)
    if not has_gaps and len(distinct) * 4 > len(values):
        entries = _uniform_entries(values, joined or "\x00".join(values), attribute)
        if entries is not None:
            return entries, False
    encoded = {"": ""}  # one conversion per distinct value: most columns repeat their values
    prefix = attribute.prefix
    for value in distinct:
        if value:
            stored, kind = _classify(value)
            attribute.kinds.add(kind)
            encoded[value] = prefix + (
                encode_basestring(stored) if type(stored) is str else repr(stored)
            )
    return list(map(encoded.__getitem__, values)), has_gaps


def _uniform_entries(
    values: list[str], joined: str, attribute: _AttributeColumn
) -> list[str] | None:
    """The entries of a column of many different values all of one kind, found by one
    regular expression over the column (or by their first characters): numbers that print as
    written, other numbers, dates, text that cannot be a number, date or boolean. None when
    the column is none of these (each value is then classified)."""
    prefix, kinds = attribute.prefix, attribute.kinds
    if _PRINTED_INTEGERS.fullmatch(joined) or _PRINTED_DECIMALS.fullmatch(joined):
        kinds.add(ProfileField.DataType.NUMBER)
        return list(map(prefix.__add__, values))
    if _NUMBERS.fullmatch(joined):
        kinds.add(ProfileField.DataType.NUMBER)
        if "." not in joined:
            return list(map(prefix.__add__, map(str, map(int, values))))
        if joined.count(".") == len(values):
            return list(map(prefix.__add__, map(repr, map(float, values))))
        return None
    quoted = prefix.replace("%", "%%") + '"%s"'
    if _DATES.fullmatch(joined):  # nothing in a date needs escaping in JSON
        lengths = set(map(len, values))
        if min(lengths) == 10:
            kinds.add(ProfileField.DataType.DATE)
        if max(lengths) > 10:
            kinds.add(ProfileField.DataType.DATETIME)
        return list(map(quoted.__mod__, values))
    if not any(
        start in _NOT_TEXT_START or start.isdigit() for start in set(map(itemgetter(0), values))
    ):
        kinds.add(ProfileField.DataType.TEXT)
        return list(map(prefix.__add__, map(encode_basestring, values)))
    return None


def _row_problem(row: list[str], width: int) -> str:
    if len(row) != width:
        return ngettext(
            "The row has %(found)d value but the header has %(expected)d columns.",
            "The row has %(found)d values but the header has %(expected)d columns.",
            len(row),
        ) % {
            "found": len(row),
            "expected": width,
        }
    joined = "".join(row)
    if _SURROGATE.search(joined):
        return _(
            "The row is not valid UTF-8 text. Save the file as UTF-8 (CSV) and import it again."
        )
    if "\x00" in joined:
        return _(
            "The row contains a NUL character (code 0), which cannot be stored. Remove it and "
            "import the row again."
        )
    return ""


def _identity_problem(customer_id: str, email: str) -> str:
    if not customer_id:
        return _("The row has no customer id.")
    for name, value, limit in (
        ("customer_id", customer_id, MAX_LENGTHS["customer_id"]),
        ("email", email, MAX_ADDRESS_LENGTH),
    ):
        if len(value) > limit:
            return _("The %(field)s is longer than %(limit)d characters.") % {
                "field": Profile._meta.get_field(name).verbose_name,
                "limit": limit,
            }
    local_part = email.rpartition("@")[0]
    if len(local_part) > MAX_LOCAL_PART_LENGTH:
        return _("The part of the email before the @ is longer than %(limit)d characters.") % {
            "limit": MAX_LOCAL_PART_LENGTH
        }
    return ""


def _store(
    batches: Iterable[StagedRows],
    fixed_columns: set[str],
    attribute_columns: list[str],
    report: ImportReport,
    outcomes: dict[str, str] | None = None,
    *,
    origin: origins.Origin,
    on_staged: Callable[[Any], None] | None = None,
    csv_lines: line_hashes.CsvLines | None = None,
) -> None:
    updatable = [name for name in FIXED_COLUMNS if name in fixed_columns and name != "customer_id"]
    stamp = origins.stamp(origin, [*updatable, *attribute_columns])
    if connection.vendor == "postgresql":
        _store_postgresql(
            batches, updatable, attribute_columns, report, outcomes, stamp, on_staged, csv_lines
        )
    else:
        _store_batched(batches, updatable, attribute_columns, report, outcomes, stamp)


@transaction.atomic
def _store_postgresql(
    batches: Iterable[StagedRows],
    updatable: list[str],
    attribute_columns: list[str],
    report: ImportReport,
    outcomes: dict[str, str] | None = None,
    stamp: str | None = None,
    on_staged: Callable[[Any], None] | None = None,
    csv_lines: line_hashes.CsvLines | None = None,
) -> None:
    """``COPY`` into a staging table, then one set-based upsert of what changed
    (``segments.staging``), each written profile stamped with the fields' origin. A CSV
    file's rows (``csv_lines``) keep their line hashes (``segments.line_hashes``)."""
    hashed = csv_lines is not None
    with connection.cursor() as cursor:
        if csv_lines is None:
            copied = staging.stage_rows(cursor, batches)
        else:
            copied = _stage_hashed(cursor, batches, csv_lines)
        if on_staged is not None:
            on_staged(cursor)
        distinct, repeated = staging.keep_latest_rows(cursor, unchanged=hashed)
        for line, first_line, customer_id in repeated:
            report.warn(RepeatedCustomerId(line, first_line, customer_id=customer_id))
        # The rows left in the staging table: a re-import's left-out lines count in
        # ``distinct`` but are not compared (1,000,000 of them made the upsert hash every
        # profile for 50,000 warned rows, 0.8 CPU-s, where looking each up by the index costs
        # 0.1).
        staged_rows = min(distinct, copied)
        if outcomes is None:
            created, updated = staging.upsert_staged(
                cursor,
                updatable,
                attribute_columns,
                origins=stamp,
                staged_rows=staged_rows,
                hashed=hashed,
            )
        else:
            written = staging.upsert_staged(
                cursor,
                updatable,
                attribute_columns,
                outcomes=True,
                origins=stamp,
                staged_rows=staged_rows,
                hashed=hashed,
            )
            created, updated = _collect_outcomes(written, outcomes)
        if hashed:  # some rows that changed nothing may still have no line hash on the profile
            staged, with_hash = staging.hashed_rows(cursor)
            if staged > created + updated and with_hash:
                staging.store_line_hashes(cursor)
        staging.drop_staging(cursor, unchanged=hashed)
    report.created, report.updated = created, updated
    report.unchanged = distinct - created - updated


def _stage_hashed(cursor, batches: Iterable[StagedRows], csv_lines: line_hashes.CsvLines) -> int:
    """Stage a CSV file's batches and its unchanged lines; how many rows were staged (the
    unchanged lines apart). While lines are looked up (a query each batch), each batch is its
    own ``COPY``; then the rest is one."""
    staging.create_staging(cursor, unchanged=True)
    batches = iter(batches)
    copied = 0
    for batch in batches:  # making a batch looks its lines up: no COPY may be open then
        copied += staging.copy_rows(cursor, [batch], hashed=True)
        if not csv_lines.looking_up:
            break
    return copied + staging.copy_rows(cursor, batches, hashed=True)


_OUTCOMES = {True: CREATED, False: UPDATED, None: UNCHANGED}


def _collect_outcomes(
    rows: list[tuple[str, bool | None]], outcomes: dict[str, str]
) -> tuple[int, int]:
    """Per customer id: created (True), updated (False) or unchanged (None: not written)."""
    results = map(_OUTCOMES.__getitem__, map(itemgetter(1), rows))
    outcomes.update(zip(map(itemgetter(0), rows), results, strict=True))
    counts = Counter(outcomes.values())
    return counts[CREATED], counts[UPDATED]


def _store_batched(
    batches: Iterable[StagedRows],
    updatable: list[str],
    attribute_columns: list[str],
    report: ImportReport,
    outcomes: dict[str, str] | None = None,
    stamp: str | None = None,
) -> None:
    """SQLite: batched upserts. Rows that change nothing are not rewritten."""
    table = Profile._meta.db_table
    clear = json.dumps(dict.fromkeys(attribute_columns))
    set_columns = "".join(f"{name} = excluded.{name}, " for name in updatable)
    merged = f"json_patch(json_patch({table}.attributes, %s), excluded.attributes)"
    compared = " OR ".join(
        [
            *(f"{table}.{name} IS NOT excluded.{name}" for name in updatable),
            f"json({table}.attributes) IS NOT json({merged})",
        ]
    )
    stamp = stamp or "{}"
    sql = (
        f"INSERT INTO {table} (customer_id, email, first_name, last_name, attributes,"
        " field_origins, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        f" ON CONFLICT (customer_id) DO UPDATE SET {set_columns} attributes = {merged},"
        f" field_origins = json_patch(coalesce({table}.field_origins, '{{}}'), %s),"
        f" updated_at = CURRENT_TIMESTAMP WHERE {compared}"
    )
    first_lines: dict[str, int] = {}  # SQLite serves the demo: its files are small
    with connection.cursor() as cursor:
        for staged in batches:
            for line, customer_id in zip(staged.lines, staged.customer_ids, strict=True):
                first = first_lines.setdefault(customer_id, line)
                if first != line:
                    report.warn(RepeatedCustomerId(line, first, customer_id=customer_id))
            customer_ids = staged.customer_ids
            existing = set(
                Profile.objects.filter(customer_id__in=customer_ids).values_list(
                    "customer_id", flat=True
                )
            )
            changes_before = _sqlite_total_changes(cursor)
            rows = [(*row, stamp, clear, stamp, clear) for row in staged.rows()]
            with transaction.atomic():
                if outcomes is None:
                    cursor.executemany(sql, rows)
                else:  # one statement per row, to tell which rows were written
                    for customer_id, row in zip(customer_ids, rows, strict=True):
                        cursor.execute(sql, row)
                        outcomes[customer_id] = (
                            UNCHANGED
                            if not cursor.rowcount
                            else UPDATED
                            if customer_id in existing
                            else CREATED
                        )
            written = _sqlite_total_changes(cursor) - changes_before
            fresh = len(set(customer_ids) - existing)
            report.created += fresh
            report.updated += written - fresh
            report.unchanged += len(staged) - written


def _sqlite_total_changes(cursor) -> int:
    cursor.execute("SELECT total_changes()")
    return cursor.fetchone()[0]


# The API's records: JSON objects made into the rows of one table ------------------------------

_BAD_ATTRIBUTE = gettext_lazy(
    "The attribute “%(name)s” must be text, a number, true/false or null."
)


def _cell(value) -> str | None:
    """A JSON value as the text a CSV cell would hold, or None if it cannot be one."""
    kind = type(value)  # what a JSON parser makes: exact types, so no isinstance chain (hot)
    if kind is str:
        return value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return str(value)
    return None


def _as_row(record, header_index: dict[str, int]) -> tuple[list[str] | None, str]:
    """The record as a row under the header, or (None, why it cannot be one)."""
    if not isinstance(record, dict):
        return None, _("The record is not a JSON object.")
    attributes = record.get("attributes") or {}
    if not isinstance(attributes, dict):
        return None, _("“attributes” must be an object of names and values.")
    row = [""] * len(header_index)
    for name in FIXED_COLUMNS:
        if name in record:
            value = _cell(record[name])
            if value is None:
                return None, _("The %(field)s must be text.") % {"field": name.replace("_", " ")}
            row[header_index[name]] = value
    for name, value in attributes.items():
        if "\x00" in name:
            return None, _("An attribute name contains a NUL character (code 0).")
        text = _cell(value)
        if text is None or name in FIXED_COLUMNS:
            return None, _BAD_ATTRIBUTE % {"name": name}
        row[header_index[name]] = text
    return row, ""


def _header(records: list) -> list[str]:
    """``customer_id``, then every fixed field and attribute any record carries, in the order
    first seen: the records of a call are one table, as a CSV file is."""
    names = dict.fromkeys(["customer_id"])
    for record in records:
        if isinstance(record, dict):
            names.update(dict.fromkeys(name for name in FIXED_COLUMNS if name in record))
            attributes = record.get("attributes")
            if isinstance(attributes, dict):
                # A name the import cannot store rejects its record (``_as_row``), not the call.
                names.update(dict.fromkeys(name for name in attributes if "\x00" not in name))
    return list(names)


def _as_columns(records: list) -> tuple[list[str], list[list[str]]] | None:
    """The records as ``_as_row`` makes them, but column by column (C-level per column),
    when every record is an object whose fields and attributes are text, numbers,
    true/false or null: the usual call. None when some record is not: each is then looked
    at by ``_as_row``, to say which and why."""
    if set(map(type, records)) != {dict}:
        return None
    attributes = list(map(_ATTRIBUTES, records))
    if set(map(type, attributes)) != {dict}:
        attributes = [found or {} for found in attributes]  # missing, null or empty: none
        if set(map(type, attributes)) != {dict}:
            return None
    names = list(dict.fromkeys(chain.from_iterable(map(dict.keys, attributes))))
    if any("\x00" in name or name in FIXED_COLUMNS for name in names):
        return None
    fixed = [
        name
        for name in FIXED_COLUMNS
        if name == "customer_id" or any(map(methodcaller("__contains__", name), records))
    ]
    columns = []
    for values in chain(_values_of(records, fixed), _values_of(attributes, names)):
        column = _as_cells(values)
        if column is None:
            return None
        columns.append(column)
    return [*fixed, *names], columns


_ATTRIBUTES = methodcaller("get", "attributes")


def _values_of(objects: list[dict], names: list[str]) -> list[list]:
    """Each name's values across the objects, ``""`` where one leaves it out: C-level per
    name, and no tuple per object (each one more object for the cycle collector to count)."""
    columns = []
    for name in names:
        try:
            columns.append(list(map(itemgetter(name), objects)))
        except KeyError:
            columns.append(list(map(methodcaller("get", name, ""), objects)))
    return columns


_TEXT = frozenset({str})
#: What a JSON parser makes that ``_cell`` writes (objects and arrays cannot be cells).
_CELL_KINDS = frozenset({str, int, float, bool, type(None)})
_NUMBER_KINDS = frozenset({int, float})
_NULL_AS_CELL = {None: ""}
_CONSTANTS_AS_CELLS = {None: "", True: "true", False: "false"}


def _as_cells(values: list) -> list[str] | None:
    """``_cell`` of each value (None if one cannot be a cell), C-level unless the column
    mixes true/false with numbers (which a mapping could not tell apart: ``1 == True``)."""
    kinds = set(map(type, values))
    if kinds <= _TEXT:
        return values
    if not kinds <= _CELL_KINDS:
        return None
    numbers = kinds & _NUMBER_KINDS
    if bool in kinds:
        if numbers:
            return list(map(_cell, values))  # type: ignore[arg-type]
        values = list(map(_CONSTANTS_AS_CELLS.get, values, values))
    elif type(None) in kinds:
        values = list(map(_NULL_AS_CELL.get, values, values))
    return list(map(str, values)) if numbers else values


def import_json_records(records: list) -> dict:
    """Upsert the API's JSON records through the CSV import's code path, as one table (a field
    any record carries is set on all of them); a result for every record. The field
    catalogue's counts are left to the caller."""
    refused: dict[int, str] = {}  # records that cannot be rows, by index: why
    table = _as_columns(records)
    if table is not None:  # every record is a row
        header, columns = table
        indexes: list[int] = list(range(len(records)))
        customer_ids = columns[0]
        rows: Iterable = zip(*columns, strict=True)
    else:
        header = _header(records)
        header_index = {name: index for index, name in enumerate(header)}
        indexes, customer_ids = [], []

        def each_row():
            # Lazily: each row is made while the database takes in the ones before it.
            for index, record in enumerate(records):
                row, problem = _as_row(record, header_index)
                if row is None:
                    refused[index] = problem
                else:
                    indexes.append(index)
                    customer_ids.append(row[0])
                    yield row

        rows = each_row()
    outcomes: dict[str, str] = {}
    report = import_rows(header, rows, outcomes, recount_fields=False)
    if table is not None:
        shown_ids = customer_ids
        results = list(map(outcomes.get, map(str.strip, customer_ids)))
    else:
        shown_ids = [
            _cell(record.get("customer_id")) if isinstance(record, dict) else None
            for record in records
        ]
        results = [REJECTED] * len(records)
        for index, outcome in zip(
            indexes, map(outcomes.get, map(str.strip, customer_ids)), strict=True
        ):
            results[index] = outcome
    # A record without warnings has an empty tuple for them (a JSON array all the same): its
    # result then holds no container, and Python's cycle collector leaves it alone.
    listed = [
        {
            "index": index,
            "customer_id": customer_id or None,
            "result": result,
            "reason": None,
            "warnings": (),
        }
        for index, customer_id, result in zip(range(len(records)), shown_ids, results, strict=True)
    ]
    for index, reason in refused.items():
        listed[index]["reason"] = reason
    for rejection in report.rejected_rows:  # line 2 is the first row
        listed[indexes[rejection.line - 2]].update(result=REJECTED, reason=rejection.reason)
    warnings: dict[int, list[dict]] = {}  # the import report's, by record
    for warning in report.warnings:
        warnings.setdefault(indexes[warning.line - 2], []).append(
            {"field": warning.field, "message": warning_message(warning)}
        )
    for index, found in warnings.items():
        listed[index]["warnings"] = found
    return {
        # By customer id, as the import counts: of two records with one id, the last counts.
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": len(records) - len(indexes) + report.rejected,
        "results": listed,
    }
