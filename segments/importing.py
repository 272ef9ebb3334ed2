"""Import profiles from CSV: streamed, validated row by row, upserted by customer id in bulk.

The file is never held in memory: rows are parsed one at a time and streamed into the
database (``COPY`` into a temporary table on PostgreSQL, then one set-based upsert; batched
``INSERT ... ON CONFLICT`` on SQLite). A malformed row is rejected with its line number and
the reason; the valid rows are kept. A name longer than its column is shortened and kept, with
a warning: only a customer id or e-mail that does not fit rejects the row, because a shortened
one would name someone else. An e-mail fits when a service can take it (RFC 5321: 254
characters, 64 before the @); one that does not look like an address is kept with a warning,
and exports skip it.

``import_records`` is the one way in for profiles (the CSV import, the demo seeder, and any
later API): every record passes the same checks before the same upsert.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import IO, NamedTuple

from django.db import connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from config.text import shortened
from segments.catalogue import (
    TooManyFields,
    check_field_limit,
    fields_admitted,
    refresh_field_catalogue,
)
from segments.models import Profile, ProfileField
from segments.rules import NUMBER_PATTERN

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
_IDENTIFYING_LIMITS = (("customer_id", MAX_LENGTHS["customer_id"]), ("email", MAX_ADDRESS_LENGTH))
#: What exports skip as "invalid e-mail" (``exports.recipients.EMAIL_PATTERN``, the same).
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SQLITE_BATCH_ROWS = 5_000
#: How many of the header's names a message about the header lists.
SHOWN_HEADER_NAMES = 20
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
_SURROGATE = re.compile("[\udc80-\udcff]")
_NUMBER = NUMBER_PATTERN
_NUMBER_START = frozenset("-0123456789")
_BOOLEAN_START = frozenset("tTfF")
_BOOLEANS = frozenset({"true", "false"})
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


def import_csv(stream: IO[bytes], column_map: ColumnMap | None = None) -> ImportReport:
    """Import a UTF-8 CSV file (with or without BOM) from a binary stream."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    return _import_table(csv.reader(text), column_map or ColumnMap())


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
) -> ImportReport:
    """Import rows of text under ``header`` exactly as a CSV file of them would be imported
    (the API's bulk upsert): the same checks, the same upsert. Lines are numbered as in a
    file, the header being line 1. ``outcomes``, when given, receives each customer id's
    outcome: ``CREATED``, ``UPDATED`` or ``UNCHANGED``. ``recount_fields=False`` leaves the
    field catalogue's counts to the caller (``segments.catalogue.recount_fields``)."""
    return _import_table(_RowReader(chain([header], rows)), ColumnMap(), outcomes, recount_fields)


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
    try:
        with fields_admitted(name for _index, name in attribute_columns):
            records = _parse_rows(
                reader, header, positions, attribute_columns, attribute_types, report
            )
            _store(
                records, set(positions), [name for _i, name in attribute_columns], report, outcomes
            )
            refresh_field_catalogue(attribute_types.inferred(), recount=recount_fields)
    except TooManyFields as error:
        raise ImportFileError(str(error)) from error
    return report


def import_records(
    records: Iterable[ProfileRecord],
    attribute_types: dict[str, str],
    *,
    fields: Iterable[str] = FIXED_COLUMNS,
    recount_fields: bool = True,
) -> ImportReport:
    """Import already-parsed records (the demo seeder and the sources use this); the fixed
    ``fields`` are set (a fixed field not named keeps the profile's value).

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
        _store(kept, fixed, list(attribute_types), report)
        refresh_field_catalogue(attribute_types, recount=recount_fields)
    return report


def _checked(
    record: ProfileRecord, report: ImportReport, *, email_given: bool = True
) -> ProfileRecord | None:
    """The record as it can be kept, names shortened to fit (with a warning each), or None
    when it is rejected (recorded on ``report``). Every record passes here before the upsert."""
    reason = _identity_problem(record)
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


def _parse_rows(
    reader,
    header: list[str],
    positions: dict[str, int],
    attribute_columns: list[tuple[int, str]],
    attribute_types: _AttributeTypes,
    report: ImportReport,
) -> Iterator[ProfileRecord]:
    width = len(header)
    previous_end = 1
    seen = attribute_types.seen
    for _index, name in attribute_columns:
        seen.setdefault(name, set())
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            report.rows_read += 1
            report.reject(
                reader.line_num,
                _("The row could not be read as CSV (%(error)s).") % {"error": error},
            )
            previous_end = reader.line_num
            continue
        line, previous_end = previous_end + 1, reader.line_num
        if not row:
            continue
        report.rows_read += 1
        reason = _row_problem(row, width)
        if reason:
            at = positions["customer_id"]
            report.reject(line, reason, row[at].strip() if at < len(row) else "")
            continue
        values = {fixed: row[index].strip() for fixed, index in positions.items()}
        record = _checked(
            ProfileRecord(
                line,
                values["customer_id"],
                values.get("email", ""),
                values.get("first_name", ""),
                values.get("last_name", ""),
                {},
            ),
            report,
            email_given="email" in positions,
        )
        if record is None:
            continue
        # Attributes are read only from kept rows, so a rejected row adds no type to the catalogue.
        attributes = record.attributes
        for index, name in attribute_columns:
            value = row[index].strip()
            if value:
                attributes[name], kind = _classify(value)
                seen[name].add(kind)
        yield record


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


def _identity_problem(record: ProfileRecord) -> str:
    if not record.customer_id:
        return _("The row has no customer id.")
    for name, limit in _IDENTIFYING_LIMITS:
        if len(getattr(record, name)) > limit:
            return _("The %(field)s is longer than %(limit)d characters.") % {
                "field": Profile._meta.get_field(name).verbose_name,
                "limit": limit,
            }
    local_part = record.email.rpartition("@")[0]
    if len(local_part) > MAX_LOCAL_PART_LENGTH:
        return _("The part of the email before the @ is longer than %(limit)d characters.") % {
            "limit": MAX_LOCAL_PART_LENGTH
        }
    return ""


def _store(
    records: Iterable[ProfileRecord],
    fixed_columns: set[str],
    attribute_columns: list[str],
    report: ImportReport,
    outcomes: dict[str, str] | None = None,
) -> None:
    updatable = [name for name in FIXED_COLUMNS if name in fixed_columns and name != "customer_id"]
    if connection.vendor == "postgresql":
        _store_postgresql(records, updatable, attribute_columns, report, outcomes)
    else:
        _store_batched(records, updatable, attribute_columns, report, outcomes)


@transaction.atomic
def _store_postgresql(
    records: Iterable[ProfileRecord],
    updatable: list[str],
    attribute_columns: list[str],
    report: ImportReport,
    outcomes: dict[str, str] | None = None,
) -> None:
    table = Profile._meta.db_table
    set_columns = "".join(f"{name} = EXCLUDED.{name}, " for name in updatable)
    merged_attributes = f"({table}.attributes - %s::text[]) || EXCLUDED.attributes"
    compared = ", ".join([*(f"{table}.{name}" for name in updatable), f"{table}.attributes"])
    proposed = ", ".join([*(f"EXCLUDED.{name}" for name in updatable), merged_attributes])
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE profile_import_rows (line_no bigint, customer_id text, email text,"
            " first_name text, last_name text, attributes jsonb) ON COMMIT DROP"
        )
        copied = 0
        with cursor.cursor.copy(
            "COPY profile_import_rows (line_no, customer_id, email, first_name, last_name,"
            " attributes) FROM STDIN"
        ) as copy:
            for record in records:
                copy.write_row((*record[:5], json.dumps(record.attributes, ensure_ascii=False)))
                copied += 1
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(
            f"""
            WITH latest AS MATERIALIZED (
                SELECT DISTINCT ON (customer_id)
                       customer_id, email, first_name, last_name, attributes
                FROM profile_import_rows ORDER BY customer_id, line_no DESC
            ), upserted AS (
                INSERT INTO {table} (customer_id, email, first_name, last_name, attributes,
                                     created_at, updated_at)
                SELECT customer_id, email, first_name, last_name, attributes, now(), now()
                FROM latest
                ON CONFLICT (customer_id) DO UPDATE
                SET {set_columns} attributes = {merged_attributes}, updated_at = now()
                WHERE ({compared}) IS DISTINCT FROM ({proposed})
                RETURNING customer_id, (xmax = 0) AS created
            )
            {_PER_CUSTOMER if outcomes is not None else _COUNTS}
            """,
            (attribute_columns, attribute_columns),
        )
        if outcomes is None:
            created, updated, distinct = cursor.fetchone()
        else:
            created, updated, distinct = _collect_outcomes(cursor.fetchall(), outcomes)
        if distinct < copied:  # some customer id is on several rows: say which (rarely needed)
            cursor.execute(
                "SELECT line_no, first_line, customer_id FROM (SELECT line_no, customer_id,"
                " min(line_no) OVER (PARTITION BY customer_id) AS first_line"
                " FROM profile_import_rows) repeated WHERE line_no > first_line ORDER BY line_no"
            )
            for line, first_line, customer_id in cursor.fetchall():
                report.warn(RepeatedCustomerId(line, first_line, customer_id=customer_id))
        cursor.execute("DROP TABLE profile_import_rows")
    report.created, report.updated = created, updated
    report.unchanged = distinct - created - updated


_COUNTS = """
    SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created),
           (SELECT count(*) FROM latest)
    FROM upserted"""
_PER_CUSTOMER = """
    SELECT latest.customer_id, upserted.created
    FROM latest LEFT JOIN upserted USING (customer_id)"""


def _collect_outcomes(
    rows: Iterable[tuple[str, bool | None]], outcomes: dict[str, str]
) -> tuple[int, int, int]:
    """Per customer id: created (True), updated (False) or unchanged (None: not written)."""
    for customer_id, created in rows:
        outcomes[customer_id] = {True: CREATED, False: UPDATED, None: UNCHANGED}[created]
    counts = Counter(outcomes.values())
    return counts[CREATED], counts[UPDATED], len(outcomes)


def _store_batched(
    records: Iterable[ProfileRecord],
    updatable: list[str],
    attribute_columns: list[str],
    report: ImportReport,
    outcomes: dict[str, str] | None = None,
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
    sql = (
        f"INSERT INTO {table} (customer_id, email, first_name, last_name, attributes,"
        " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        f" ON CONFLICT (customer_id) DO UPDATE SET {set_columns} attributes = {merged},"
        f" updated_at = CURRENT_TIMESTAMP WHERE {compared}"
    )
    iterator = iter(records)
    first_lines: dict[str, int] = {}  # SQLite serves the demo: its files are small
    with connection.cursor() as cursor:
        while batch := list(islice(iterator, SQLITE_BATCH_ROWS)):
            for record in batch:
                first = first_lines.setdefault(record.customer_id, record.line)
                if first != record.line:
                    report.warn(
                        RepeatedCustomerId(record.line, first, customer_id=record.customer_id)
                    )
            customer_ids = [record.customer_id for record in batch]
            existing = set(
                Profile.objects.filter(customer_id__in=customer_ids).values_list(
                    "customer_id", flat=True
                )
            )
            changes_before = _sqlite_total_changes(cursor)
            rows = [
                (*record[1:5], json.dumps(record.attributes, ensure_ascii=False), clear, clear)
                for record in batch
            ]
            with transaction.atomic():
                if outcomes is None:
                    cursor.executemany(sql, rows)
                else:  # one statement per row, to tell which rows were written
                    for record, row in zip(batch, rows, strict=True):
                        cursor.execute(sql, row)
                        outcomes[record.customer_id] = (
                            UNCHANGED
                            if not cursor.rowcount
                            else UPDATED
                            if record.customer_id in existing
                            else CREATED
                        )
            written = _sqlite_total_changes(cursor) - changes_before
            fresh = len(set(customer_ids) - existing)
            report.created += fresh
            report.updated += written - fresh
            report.unchanged += len(batch) - written


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


def import_json_records(records: list) -> dict:
    """Upsert the API's JSON records through the CSV import's code path, as one table (a field
    any record carries is set on all of them); a result for every record. The field
    catalogue's counts are left to the caller."""
    header = _header(records)
    header_index = {name: index for index, name in enumerate(header)}
    indexes, customer_ids, results = [], [], [None] * len(records)

    def rows():
        # Lazily: each row is made while the database takes in the ones before it.
        for index, record in enumerate(records):
            row, problem = _as_row(record, header_index)
            if row is None:
                results[index] = {"result": REJECTED, "reason": problem}
            else:
                indexes.append(index)
                customer_ids.append(row[0])
                yield row

    outcomes: dict[str, str] = {}
    report = import_rows(header, rows(), outcomes, recount_fields=False)
    for rejection in report.rejected_rows:  # line 2 is the first row
        results[indexes[rejection.line - 2]] = {"result": REJECTED, "reason": rejection.reason}
    for index, customer_id in zip(indexes, customer_ids, strict=True):
        if results[index] is None:
            results[index] = {"result": outcomes[customer_id.strip()], "reason": None}
    warnings: dict[int, list[dict]] = {}  # the import report's warnings, by record
    for warning in report.warnings:
        warnings.setdefault(indexes[warning.line - 2], []).append(
            {"field": warning.field, "message": warning_message(warning)}
        )
    listed = []
    for index, (record, result) in enumerate(zip(records, results, strict=True)):
        customer_id = record.get("customer_id") if isinstance(record, dict) else None
        listed.append(
            {
                "index": index,
                "customer_id": _cell(customer_id) or None,
                **result,
                "warnings": warnings.get(index, []),
            }
        )
    return {
        # By customer id, as the import counts: of two records with one id, the last counts.
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": len(records) - len(indexes) + report.rejected,
        "results": listed,
    }
