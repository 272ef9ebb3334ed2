"""The small interface between Audience Relay and a place where profiles live (a source).

A source kind reads; it never writes. Every kind offers the same five things, and the run
never branches on the kind:

* ``test()``: named steps (reach the server, sign in, read what was chosen), each passed,
  failed or skipped with a message a person can act on;
* ``columns(read)``: the name and the profile field type of every column of a table, a view,
  a file or a read-only query;
* ``preview(read)``: the first rows (20 by default), as values already typed;
* ``batches(read, after=...)``: every row, a batch at a time, streamed from the server
  (a server-side cursor on PostgreSQL, an unbuffered cursor on MySQL / MariaDB, DuckDB's
  streamed result for files); with a cursor column, only rows at or past ``after``, in
  cursor order; with a key column (a full sync, by its customer id column), in key order
  and only the rows strictly after ``after_key`` in that order. Rows without a key (NULL)
  come once, at the start or at the end as the kind orders them, so a reading resumed
  after a key never reads one twice. A kind that can tell its data's version (a file at an
  address) gives it in ``read_version``, and raises ``SourceUnchanged`` instead of reading
  data still at ``Read.unchanged_since``. A run iterates ``batches`` in a thread of its
  own (``sources.reading``), so a kind reads through its own connection, never Django's.

Queries run read-only (a read-only transaction or session, a statement timeout); a query that
writes is refused. Every failure is a ``SourceError`` whose message is written for a person,
in the database's own words where the database said something useful (a syntax error and
its position), and never contains a password.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any, ClassVar

from django.conf import settings

from config.translation import LaterText
from config.translation import gettext_later as _

# Re-exported: each family's kinds and callers take them from their own base.
from core.steps import StepResult as StepResult
from core.steps import StepSkipped as StepSkipped
from core.steps import StepStatus as StepStatus
from core.steps import run_steps as steps_run

#: The profile field types (``segments.models.ProfileField.DataType`` values) a column maps to.
TEXT, NUMBER, DATE, DATETIME, BOOLEAN = "text", "number", "date", "datetime", "boolean"
PREVIEW_ROWS = 20


class SourceError(Exception):
    """Reading the source failed. ``message`` is safe to show and to store (no secrets)."""

    def __init__(self, message: LaterText | str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


class SourceUnchanged(Exception):
    """The source's data is the version ``Read.unchanged_since`` names (a file's server answered
    304 Not Modified): nothing was read. ``version`` is the version it has now (the same one,
    or the same data's newer validators)."""

    def __init__(self, version: dict[str, Any]):
        super().__init__(version)
        self.version = version


class WritingQueryRefused(SourceError):
    """The query would change the source: sources only read."""

    def __init__(self) -> None:
        super().__init__(
            _(
                "This query would change data in the source, and a source is only read. "
                "Use a SELECT query (it may start with WITH)."
            )
        )


def run_steps(
    steps: Sequence[tuple[LaterText | str, Callable[[], LaterText | str]]],
) -> list[StepResult]:
    """Run a source test's named steps (``core.steps.run_steps``): a step fails by raising
    ``SourceError``."""
    return steps_run(steps, skip_message=_("Skipped: an earlier step failed."), failure=SourceError)


@dataclass(frozen=True)
class Column:
    """A column of what is read: its name, the source's own type name, and the profile field
    type its values become."""

    name: str
    source_type: str
    field_type: str


@dataclass(frozen=True)
class Read:
    """What to read: a table (or view, or for files the file itself) or a read-only query.
    ``cursor_column`` orders the rows and, with ``after``, keeps only those at or past it."""

    table: str = ""
    query: str = ""
    cursor_column: str = ""
    after: Any = None
    #: A full sync reads in the order of this column (the customer id's) and, resuming a
    #: reading that died, only the rows after ``after_key`` (the last key it committed).
    key_column: str = ""
    after_key: Any = None
    #: The version of the data (``SourceKind.read_version``) that an earlier reading read
    #: whole: a kind that can tell its data is still that version raises ``SourceUnchanged``
    #: instead of reading it (a file at an address: a conditional request).
    unchanged_since: dict[str, Any] | None = None
    #: A run reads only these columns (all when empty): ``chosen_columns``.
    columns: tuple[str, ...] = ()

    def with_after(self, after: Any) -> Read:
        return replace(self, after=after)


def chosen_columns(read: Read, columns: list[Column]) -> list[Column] | None:
    """The columns of ``read.columns`` that the source has, in its order, or None to read
    them all: when ``read`` names none, or the source's names repeat (a query's join) and so
    cannot be chosen by name. (A mapped column that is gone is left for the run to name.)"""
    if not read.columns:
        return None
    names = [column.name for column in columns]
    if len(set(names)) != len(names):
        return None
    return [column for column in columns if column.name in read.columns] or None


def statement_timeout_seconds() -> float:
    return float(settings.SOURCE_STATEMENT_TIMEOUT_SECONDS)


def connect_timeout_seconds() -> int:
    return max(1, int(settings.SOURCE_CONNECT_TIMEOUT_SECONDS))


# TLS failures, in the same words for every kind ------------------------------------------------


def tls_not_offered(host: str, mode: str) -> LaterText:
    """A server without TLS where the TLS setting requires it (the drivers stop before
    signing in: the password is not sent)."""
    return _(
        "The server at “%(host)s” does not offer TLS, which the TLS setting “%(mode)s” "
        "requires: the password was not sent. Turn TLS on at the server, or choose another "
        "TLS setting."
    ) % {"host": host, "mode": mode}


def certificate_not_trusted(host: str, ca_file: str) -> LaterText:
    """The server's certificate was not signed by the CA file's authority, or (no file) by
    one the system trusts."""
    if ca_file:
        return _(
            "The certificate of the server at “%(host)s” was not signed by the authority in "
            "the CA certificate file “%(path)s”, so it is not trusted. Give the CA certificate "
            "of the authority that signed it."
        ) % {"host": host, "path": ca_file}
    return _(
        "The certificate of the server at “%(host)s” was not signed by an authority this "
        "system trusts. Give the CA certificate file of the authority that signed it."
    ) % {"host": host}


def certificate_for_another_name(host: str, reason: str, signer_only_mode: str) -> LaterText:
    """A trusted certificate that does not name the host connected to (``reason``: the
    driver's words); ``signer_only_mode`` is the kind's TLS setting that skips the name."""
    return _(
        "The server's certificate is not for the name “%(host)s” (%(error)s). Connect with a "
        "name the certificate gives, or choose %(mode)s to check only who signed it."
    ) % {"host": host, "error": reason, "mode": signer_only_mode}


def ca_file_unreadable(path: str, reason: str) -> LaterText:
    return _("The CA certificate file “%(path)s” could not be read: %(error)s") % {
        "path": path,
        "error": reason,
    }


def tls_failed(host: str, reason: str) -> LaterText:
    return _(
        "The TLS connection to “%(host)s” failed: %(error)s. Check the TLS setting and the CA "
        "certificate file."
    ) % {"host": host, "error": reason}


def cleaned_query(query: str) -> str:
    """The query without trailing semicolons and spaces (it is wrapped in a SELECT); more
    than one statement is refused."""
    text = query.strip().rstrip(";").strip()
    if not text:
        raise SourceError(_("The query is empty. Write a SELECT query or choose a table."))
    first_word = text.lstrip("(").split(None, 1)[0].lower()
    if first_word in WRITING_STATEMENTS:
        raise WritingQueryRefused()
    return text


#: How a query that writes starts: refused before it reaches the database, which would refuse
#: it too (the session is read-only). A typo is left to the database, which says where it is.
WRITING_STATEMENTS = frozenset(
    {
        "insert",
        "update",
        "delete",
        "merge",
        "upsert",
        "replace",
        "create",
        "drop",
        "alter",
        "truncate",
        "rename",
        "grant",
        "revoke",
        "call",
        "do",
        "exec",
        "execute",
        "copy",
        "load",
        "set",
        "reset",
        "lock",
        "vacuum",
        "analyze",
        "cluster",
        "reindex",
        "refresh",
        "comment",
        "attach",
        "detach",
        "install",
        "pragma",
        "export",
        "import",
        "begin",
        "commit",
        "rollback",
        "handler",
        "prepare",
    }
)


class SourceKind:
    """A kind of source. Built for one source's settings and decrypted secrets."""

    label: ClassVar[LaterText | str]
    #: The settings a source of this kind keeps (not secret), and the secret ones.
    setting_names: ClassVar[tuple[str, ...]] = ()
    secret_names: ClassVar[tuple[str, ...]] = ()
    #: Whether "what to read" can be a query (files are read whole, or through a query over
    #: the view ``source``).
    supports_tables: ClassVar[bool] = True
    #: Dotted path of the kind's ``SettingsForm`` (its own package's ``forms.py``).
    settings_form: ClassVar[str] = ""
    #: Whether a full sync reads in key order (``Read.key_column``), so that a reading that
    #: died goes on after its last key; else it is read again from the start.
    orders_by_key: ClassVar[bool] = True

    def __init__(self, settings: dict[str, Any], secrets: dict[str, Any] | None = None):
        self.settings = settings
        self.secrets = secrets or {}
        #: Once ``batches`` has begun, the version of the data it reads when the kind can tell
        #: one (a downloaded file's ETag and Last-Modified), else None.
        self.read_version: dict[str, Any] | None = None

    def test(self, read: Read | None = None) -> list[StepResult]:
        raise NotImplementedError

    def columns(self, read: Read) -> list[Column]:
        raise NotImplementedError

    def preview(self, read: Read, limit: int = PREVIEW_ROWS) -> tuple[list[Column], list[tuple]]:
        raise NotImplementedError

    def batches(self, read: Read, batch_size: int) -> Iterator[tuple[list[Column], list[tuple]]]:
        """The rows, ``batch_size`` at a time, each batch with the columns (same every time)."""
        raise NotImplementedError

    def check_cursor_column(self, read: Read, columns: list[Column]) -> Column | None:
        """The cursor column among ``columns``; a missing one is a ``SourceError``."""
        if not read.cursor_column:
            return None
        for column in columns:
            if column.name == read.cursor_column:
                return column
        raise SourceError(
            _(
                "The cursor column “%(column)s” is not among the columns read: %(columns)s. "
                "Choose one of them, or use a full sync."
            )
            % {
                "column": read.cursor_column,
                "columns": ", ".join(column.name for column in columns[:30]),
            }
        )

    def check_key_column(self, read: Read, columns: list[Column]) -> None:
        """A missing key column (the mapped customer id's) is a ``SourceError``."""
        if read.key_column and read.key_column not in {column.name for column in columns}:
            raise SourceError(
                _(
                    "The source no longer has the column “%(column)s” that the mapping uses. "
                    "Edit the source's mapping."
                )
                % {"column": read.key_column}
            )


# Values: what a profile keeps of each source value --------------------------------------------


class ValueDoesNotFit(ValueError):
    """The value cannot be kept as its field's type; the message says why."""


def as_field_value(value: Any, field_type: str) -> str | int | float | None:
    """A source value as the profile keeps it (the CSV import's conventions): numbers as JSON
    numbers, dates and date-times as ISO 8601 text (a date-time without a time zone is taken
    as UTC), yes/no as ``"true"``/``"false"``, everything else as text. None stays None."""
    if value is None:
        return None
    kind = type(value)  # hot path: exact types first, every cell of every row passes here
    if field_type == TEXT and kind is str and "\x00" not in value:
        return value
    if field_type == NUMBER and (kind is int or (kind is float and math.isfinite(value))):
        return value
    if field_type == NUMBER:
        return _number(value)
    if field_type == BOOLEAN:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int) and value in (0, 1):
            return "true" if value else "false"
        raise ValueDoesNotFit(_("“%(value)s” is not yes or no.") % {"value": _short(value)})
    if field_type == DATETIME:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return value.isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        raise ValueDoesNotFit(_("“%(value)s” is not a date and time.") % {"value": _short(value)})
    if field_type == DATE:
        if isinstance(value, dt.date):
            return value.isoformat()[:10]
        raise ValueDoesNotFit(_("“%(value)s” is not a date.") % {"value": _short(value)})
    return as_text(value)


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is str and "\x00" not in value:  # hot path
        return value
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueDoesNotFit(_("The value is binary data, not text.")) from None
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    elif isinstance(value, dt.datetime) and value.tzinfo is None:
        text = value.replace(tzinfo=dt.UTC).isoformat()
    elif isinstance(value, (dt.date, dt.time, dt.datetime, uuid.UUID, decimal.Decimal)):
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    else:
        text = str(value)
    if "\x00" in text:
        raise ValueDoesNotFit(_("The value contains a NUL character (code 0)."))
    return text


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueDoesNotFit(_("“%(value)s” is not a number.") % {"value": _short(value)})
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueDoesNotFit(_("“%(value)s” is not a number.") % {"value": _short(value)})
        return value
    raise ValueDoesNotFit(_("“%(value)s” is not a number.") % {"value": _short(value)})


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


# Cursor values: stored as JSON between runs ----------------------------------------------------


def cursor_to_json(value: Any) -> dict[str, Any] | None:
    """A cursor value as a run stores it: its kind and its value as JSON."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return {"kind": "naive_datetime", "value": value.isoformat()}
        return {"kind": "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {"kind": "date", "value": value.isoformat()}
    if isinstance(value, bool):
        return {"kind": "text", "value": str(value).lower()}
    if isinstance(value, int):
        return {"kind": "int", "value": value}
    if isinstance(value, (float, decimal.Decimal)):
        return {"kind": "number", "value": str(value)}
    return {"kind": "text", "value": str(value)}


def cursor_from_json(stored: dict[str, Any] | None, overlap_seconds: float = 0.0) -> Any:
    """The value a run reads from: the stored cursor, less the overlap for a date-time (rows
    committed late with an earlier timestamp are still read; reading a row twice is harmless,
    an unchanged profile is not written)."""
    if not stored:
        return None
    kind, value = stored["kind"], stored["value"]
    overlap = dt.timedelta(seconds=overlap_seconds)
    if kind in ("datetime", "naive_datetime"):
        return dt.datetime.fromisoformat(value) - overlap
    if kind == "date":
        return dt.date.fromisoformat(value) - dt.timedelta(days=math.ceil(overlap_seconds / 86400))
    if kind == "int":
        return int(value)
    if kind == "number":
        return decimal.Decimal(value)
    return value


# Columns: a batch's values converted column by column --------------------------------------

#: Which rows of a column do not fit, and why (row index → reason).
Problems = dict[int, LaterText | str]
_NONE = type(None)


def text_column(values: Sequence[Any]) -> tuple[list[str], Problems]:
    """``as_text`` of each value ("" for None) and the rows whose value does not fit. Hot
    path: a column of text without NUL is taken whole (C-level checks over the column); only
    another column is converted value by value."""
    kinds = set(map(type, values))
    if kinds <= {str, _NONE}:
        texts = list(values) if _NONE not in kinds else ["" if v is None else v for v in values]
        if "\x00".join(texts).count("\x00") == len(texts) - 1:
            return texts, {}
    texts, problems = [], {}
    for index, value in enumerate(values):
        try:
            texts.append(as_text(value) or "")
        except ValueDoesNotFit as error:
            texts.append("")
            problems[index] = error.args[0]
    return texts, problems


def json_column(
    values: Sequence[Any], field_type: str, prefix: str
) -> tuple[list[str], bool, Problems]:
    """Each value as ``as_field_value`` keeps it, written as the entry ``prefix`` + JSON
    (``prefix`` is ``"name": ``), "" for None; whether any is None; the rows whose value does
    not fit its field's type. The usual columns (text, numbers, yes/no, dates, date-times of
    one Python type) are converted by one C-level map each."""
    kinds = set(map(type, values))
    gaps = _NONE in kinds
    kinds.discard(_NONE)
    present = [v for v in values if v is not None] if gaps else values
    entries: list[str] | None = None
    if not kinds:
        return [""] * len(values), True, {}
    if field_type == TEXT and kinds == {str}:
        if "\x00".join(present).count("\x00") == len(present) - 1:
            entries = list(map(prefix.__add__, map(encode_basestring, present)))
    elif field_type == NUMBER and kinds <= {int, float}:
        if float not in kinds or all(map(math.isfinite, present)):
            entries = list(map(prefix.__add__, map(repr, present)))
    elif field_type == BOOLEAN and kinds == {bool}:
        words = {True: prefix + '"true"', False: prefix + '"false"'}
        entries = list(map(words.__getitem__, present))
    elif (field_type == DATE and kinds == {dt.date}) or (
        field_type == DATETIME and kinds <= {dt.date, dt.datetime}
    ):
        iso = _iso_text if field_type == DATETIME else dt.date.isoformat
        texts = map(iso, present)
        entries = list(map(f'{prefix.replace("%", "%%")}"%s"'.__mod__, texts))
    if entries is not None:
        if gaps:
            found = iter(entries)
            entries = ["" if v is None else next(found) for v in values]
        return entries, gaps, {}
    converted, problems = [], {}
    for index, value in enumerate(values):
        try:
            kept = as_field_value(value, field_type)
        except ValueDoesNotFit as error:
            converted.append("")
            problems[index] = error.args[0]
            continue
        if kept is None:
            converted.append("")
        elif type(kept) is str:
            converted.append(prefix + encode_basestring(kept))
        else:
            converted.append(prefix + repr(kept))
    return converted, gaps, problems


def _iso_text(value: dt.date) -> str:
    """A date-time as ISO 8601 (without a time zone: taken as UTC), or a date."""
    if type(value) is dt.datetime and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()
