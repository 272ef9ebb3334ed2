"""Parquet and CSV files, read through DuckDB in memory: the file is the view ``source``,
read whole or through a SELECT over it; rows streamed from DuckDB's result a batch at a time.
A file at an https:// address is downloaded first (``download``) and read where it landed.

DuckDB has no statement timeout of its own: a timer interrupts a query that runs too long.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlsplit

import duckdb
from django.template.defaultfilters import filesizeformat

from config.translation import gettext_later as _
from sources.kinds.base import (
    BOOLEAN,
    DATE,
    DATETIME,
    NUMBER,
    PREVIEW_ROWS,
    TEXT,
    Column,
    Read,
    SourceError,
    SourceKind,
    StepResult,
    StepSkipped,
    WritingQueryRefused,
    chosen_columns,
    cleaned_query,
    run_steps,
    statement_timeout_seconds,
)
from sources.kinds.duckdb.download import downloaded, is_address

FILE_FORMATS = ("auto", "parquet", "csv")
VIEW = "source"
_NUMBERS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
}


def field_type(type_name: str) -> str:
    name = type_name.upper()
    if name in _NUMBERS or name.startswith("DECIMAL"):
        return NUMBER
    if name == "BOOLEAN":
        return BOOLEAN
    if name == "DATE":
        return DATE
    if name.startswith("TIMESTAMP"):
        return DATETIME
    return TEXT


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBFileSource(SourceKind):
    label = _("Parquet or CSV file")
    setting_names = ("path", "file_format")
    settings_form = "sources.kinds.duckdb.forms.FileSettingsForm"
    supports_tables = False
    # A file is read in its own order and, when a full reading dies, read again from the
    # start (what was committed is unchanged, so nothing is written twice). Sorting it by
    # customer id to go on after a key cost more than reading it again: at 1,000,000 rows,
    # 6.7 s instead of 3.5 s and 263 MB instead of 122 MB (DuckDB's sort, 256 MB limit).
    orders_by_key = False

    def _path(self) -> str:
        path = (self.settings.get("path") or "").strip()
        if not path:
            raise SourceError(_("Give the path or the address of the file to read."))
        return path

    def _reader(self, local_path: str) -> str:
        """DuckDB's reader of the file, its format chosen or told from the source's name (an
        address's too: a download keeps the address's file extension)."""
        file_format = self.settings.get("file_format") or "auto"
        if file_format == "auto":
            name = urlsplit(self._path()).path if is_address(self._path()) else self._path()
            file_format = (
                "csv" if name.lower().rsplit(".", 1)[-1] in ("csv", "tsv", "txt") else "parquet"
            )
        if file_format == "csv":
            return f"read_csv({_literal(local_path)}, auto_detect = true, header = true)"
        return f"read_parquet({_literal(local_path)})"

    @contextmanager
    def _local_file(self, unchanged_since: dict[str, Any] | None = None) -> Iterator[str]:
        """The path DuckDB reads: the source's own, or a download of its address (only if it
        changed since ``unchanged_since``: see ``download.downloaded``)."""
        path = self._path()
        if not is_address(path):
            yield path
            return
        with downloaded(path, unchanged_since) as download:
            self.read_version = download.version
            yield str(download.path)

    @contextmanager
    def _connection(
        self, local_path: str | None = None, unchanged_since: dict[str, Any] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        with ExitStack() as stack:
            if local_path is None:
                local_path = stack.enter_context(self._local_file(unchanged_since))
            connection = duckdb.connect(":memory:", config={"threads": 2, "memory_limit": "256MB"})
            stack.callback(connection.close)
            connection.execute("SET TimeZone = 'UTC'")
            self._run(connection, f"CREATE VIEW {VIEW} AS SELECT * FROM {self._reader(local_path)}")
            yield connection

    def _run(self, connection: duckdb.DuckDBPyConnection, statement: str) -> Any:
        timer = threading.Timer(statement_timeout_seconds(), connection.interrupt)
        timer.start()
        try:
            return connection.execute(statement)
        except duckdb.InterruptException:
            raise SourceError(
                _("The query took longer than %(seconds)s seconds and was stopped.")
                % {"seconds": int(statement_timeout_seconds())}
            ) from None
        except duckdb.IOException as error:
            raise SourceError(
                _("The file could not be read: %(error)s") % {"error": _first_line(str(error))}
            ) from None
        except duckdb.Error as error:
            raise SourceError(
                _("DuckDB says: %(error)s") % {"error": _without_prefix(str(error))}
            ) from None
        finally:
            timer.cancel()

    def _from(self, read: Read) -> str:
        if not read.query:
            return VIEW
        query = cleaned_query(read.query)
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as error:
            raise SourceError(
                _("DuckDB says: %(error)s") % {"error": _without_prefix(str(error))}
            ) from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise WritingQueryRefused()
        return f"({query}) AS source_rows"

    def _select(self, read: Read, names: str = "*") -> str:
        statement = f"SELECT {names} FROM {self._from(read)}"
        if read.cursor_column:
            cursor = '"' + read.cursor_column.replace('"', '""') + '"'
            if read.after is not None:
                statement += f" WHERE {cursor} >= $after"
            statement += f" ORDER BY {cursor}"
        return statement

    def _columns_of(self, connection: duckdb.DuckDBPyConnection, read: Read) -> list[Column]:
        result = self._run(connection, f"SELECT * FROM {self._from(read)} LIMIT 0")
        return [
            Column(item[0], str(item[1]), field_type(str(item[1])))
            for item in result.description or []
        ]

    def test(self, read: Read | None = None) -> list[StepResult]:
        state: dict[str, str] = {}
        stack = ExitStack()

        def download():
            got = stack.enter_context(downloaded(self._path()))
            state["local_path"] = str(got.path)
            return _("Downloaded %(size)s from “%(host)s” to a temporary file.") % {
                "size": filesizeformat(got.size),
                "host": got.host,
            }

        def open_file():
            with self._connection(state.get("local_path")) as connection:
                count = len(self._columns_of(connection, Read()))
            return _("The file opens and has %(count)s columns.") % {"count": count}

        def read_step():
            if read is None or not read.query:
                raise StepSkipped(_("The whole file is read."))
            with self._connection(state.get("local_path")) as connection:
                columns = self._columns_of(connection, read)
            self.check_cursor_column(read, columns)
            return _("%(count)s columns can be read.") % {"count": len(columns)}

        steps = [
            (_("Open the file and read its columns"), open_file),
            (_("Read what was chosen"), read_step),
        ]
        if is_address(str(self.settings.get("path") or "")):  # a path has nothing to download
            steps.insert(0, (_("Download the file"), download))
        try:
            return run_steps(steps)
        finally:
            stack.close()

    def columns(self, read: Read) -> list[Column]:
        with self._connection() as connection:
            return self._columns_of(connection, read)

    def preview(self, read: Read, limit: int = PREVIEW_ROWS) -> tuple[list[Column], list[tuple]]:
        with self._connection() as connection:
            columns = self._columns_of(connection, read)
            self.check_cursor_column(read, columns)
            result = self._run(
                connection, f"{self._select(Read(read.table, read.query))} LIMIT {int(limit)}"
            )
            return columns, result.fetchall()

    def batches(self, read: Read, batch_size: int) -> Iterator[tuple[list[Column], list[tuple]]]:
        with self._connection(unchanged_since=read.unchanged_since) as connection:
            columns = self._columns_of(connection, read)
            self.check_cursor_column(read, columns)
            chosen = chosen_columns(read, columns)
            names = "*"
            if chosen is not None:
                columns = chosen
                names = ", ".join('"' + column.name.replace('"', '""') + '"' for column in chosen)
            statement = self._select(read, names)
            try:
                if read.cursor_column and read.after is not None:
                    result = connection.execute(statement, {"after": read.after})
                else:
                    result = connection.execute(statement)
                while batch := result.fetchmany(batch_size):
                    yield columns, batch
            except duckdb.Error as error:
                raise SourceError(
                    _("DuckDB says: %(error)s") % {"error": _without_prefix(str(error))}
                ) from None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _without_prefix(text: str) -> str:
    """DuckDB's message without its "Parser Error: " kind of prefix, on one line or two (the
    line and the caret that point at the place)."""
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
