"""PostgreSQL, and servers that speak its protocol (Redshift, CockroachDB, ...), read with
psycopg: a read-only session with a statement timeout; rows streamed through a server-side
cursor a batch at a time, typed by psycopg's loaders for each column's type."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from psycopg import errors, sql

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
    ca_file_unreadable,
    certificate_for_another_name,
    certificate_not_trusted,
    chosen_columns,
    cleaned_query,
    connect_timeout_seconds,
    run_steps,
    statement_timeout_seconds,
    tls_failed,
    tls_not_offered,
)

_FIELD_TYPES = {
    "int2": NUMBER,
    "int4": NUMBER,
    "int8": NUMBER,
    "numeric": NUMBER,
    "float4": NUMBER,
    "float8": NUMBER,
    "oid": NUMBER,
    "bool": BOOLEAN,
    "date": DATE,
    "timestamp": DATETIME,
    "timestamptz": DATETIME,
}
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
VERIFY_CA_NEEDS_A_FILE = _(
    "verify-ca checks the server's certificate against a CA certificate file: give its path, "
    "or choose verify-full to trust the system's authorities."
)


class PostgreSQLSource(SourceKind):
    label = _("PostgreSQL")
    setting_names = ("host", "port", "database", "user", "sslmode", "sslrootcert")
    settings_form = "sources.kinds.postgresql.forms.PostgreSQLSettingsForm"
    secret_names = ("password",)

    # Connecting -------------------------------------------------------------------------------

    def connection_arguments(self) -> dict[str, Any]:
        """What ``psycopg.connect`` is given (the password among it). TLS is libpq's own:
        ``sslmode`` as chosen (``prefer`` when not). ``verify-ca`` and ``verify-full`` check the
        server's certificate against the CA file given (``sslrootcert``); without one,
        ``verify-full`` trusts the system's authorities (``sslrootcert=system``, as MySQL's
        ``verify_identity`` does) and ``verify-ca`` is refused (libpq would look for a file in
        the worker's home folder)."""
        timeout_ms = int(statement_timeout_seconds() * 1000)
        mode = self.settings.get("sslmode") or "prefer"
        arguments: dict[str, Any] = {
            "host": self.settings.get("host") or "localhost",
            "port": int(self.settings.get("port") or 5432),
            "dbname": self.settings.get("database") or "",
            "user": self.settings.get("user") or "",
            "password": self.secrets.get("password") or "",
            "sslmode": mode,
            "connect_timeout": connect_timeout_seconds(),
            "application_name": "audience-relay-source",
            "options": f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms}",
        }
        if self.settings.get("sslrootcert"):
            arguments["sslrootcert"] = self.settings["sslrootcert"]
        elif mode == "verify-full":
            arguments["sslrootcert"] = "system"
        elif mode == "verify-ca":
            raise SourceError(VERIFY_CA_NEEDS_A_FILE)
        return arguments

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        try:
            connection = psycopg.connect(**self.connection_arguments())
        except psycopg.OperationalError as error:
            raise self._connect_error(error) from None
        try:
            connection.read_only = True
            yield connection
        finally:
            connection.close()

    def _connect_error(self, error: psycopg.OperationalError) -> SourceError:
        text = str(error)
        host = self.settings.get("host") or "localhost"
        if "password authentication failed" in text or "no password supplied" in text:
            return SourceError(
                _("The server refused the user name or password for “%(user)s”. Check both.")
                % {"user": self.settings.get("user") or ""}
            )
        if "could not translate host name" in text or "Name or service not known" in text:
            return SourceError(
                _("No server named “%(host)s” was found. Check the host name.") % {"host": host}
            )
        if "timeout expired" in text or "timed out" in text:
            return SourceError(
                _(
                    "The server at “%(host)s” did not answer within %(seconds)s seconds. Check "
                    "the host and port, and that the server lets this application in."
                )
                % {"host": host, "seconds": connect_timeout_seconds()}
            )
        if "Connection refused" in text:
            return SourceError(
                _("The server at “%(host)s” refused the connection on port %(port)s.")
                % {"host": host, "port": self.settings.get("port") or 5432}
            )
        if "SSL" in text or "certificate" in text:
            return self._tls_error(_libpq_reason(text))
        if "does not exist" in text and "database" in text:
            return SourceError(
                _("The server has no database named “%(database)s”.")
                % {"database": self.settings.get("database") or ""}
            )
        return SourceError(
            _("Could not connect to the server: %(error)s") % {"error": _first_line(text)}
        )

    def _tls_error(self, reason: str) -> SourceError:
        """libpq's TLS failures in words a person can act on (its own words kept)."""
        host = self.settings.get("host") or "localhost"
        ca_file = self.settings.get("sslrootcert") or ""
        if "does not support SSL" in reason:
            return SourceError(tls_not_offered(host, self.settings.get("sslmode") or "prefer"))
        if "root certificate file" in reason:
            return SourceError(ca_file_unreadable(ca_file, reason))
        if "does not match host name" in reason:
            return SourceError(certificate_for_another_name(host, reason, "verify-ca"))
        if "certificate verify failed" in reason:
            return SourceError(certificate_not_trusted(host, ca_file))
        return SourceError(tls_failed(host, reason))

    # Reading ----------------------------------------------------------------------------------

    def _base(self, read: Read) -> tuple[sql.Composable, str]:
        """The relation read, and the query text as the user wrote it (for error positions)."""
        if read.query:
            query = cleaned_query(read.query)
            return sql.SQL("({}) AS source_rows").format(sql.SQL(query)), query
        if not read.table:
            raise SourceError(_("Choose a table or view to read, or write a query."))
        return sql.Identifier(*read.table.split(".")), ""

    def _select(
        self, read: Read, columns: sql.Composable | None = None
    ) -> tuple[sql.Composed, str]:
        base, query = self._base(read)
        statement = sql.SQL("SELECT {} FROM {}").format(columns or sql.SQL("*"), base)
        if read.cursor_column:
            cursor = sql.Identifier(read.cursor_column)
            if read.after is not None:
                statement = sql.SQL("{} WHERE {} >= {}").format(
                    statement, cursor, sql.Literal(read.after)
                )
            statement = sql.SQL("{} ORDER BY {}").format(statement, cursor)
        elif read.key_column:  # NULL keys last (a btree's own order): read once, at the end
            key = sql.Identifier(read.key_column)
            if read.after_key is not None:
                statement = sql.SQL("{} WHERE ({} > {} OR {} IS NULL)").format(
                    statement, key, sql.Literal(read.after_key), key
                )
            statement = sql.SQL("{} ORDER BY {} NULLS LAST").format(statement, key)
        return statement, query

    def _columns_of(self, connection: psycopg.Connection, read: Read) -> list[tuple[Column, int]]:
        base, query = self._base(read)
        statement = sql.SQL("SELECT * FROM {} LIMIT 0").format(base)
        with connection.cursor() as cursor:
            self._execute(cursor, statement, query)
            description = cursor.description or []
        found = []
        for item in description:
            info = connection.adapters.types.get(item.type_code)
            type_name = info.name if info else str(item.type_code)
            found.append(
                (Column(item.name, type_name, _FIELD_TYPES.get(type_name, TEXT)), item.type_code)
            )
        return found

    def _execute(self, cursor: psycopg.Cursor, statement: sql.Composable, query: str) -> None:
        text = statement.as_string(cursor.connection)
        try:
            cursor.execute(text)
        except psycopg.Error as error:
            raise self._query_error(error, text, query) from None

    def _query_error(self, error: psycopg.Error, text: str, query: str) -> SourceError:
        if isinstance(error, errors.ReadOnlySqlTransaction):
            return WritingQueryRefused()
        if isinstance(error, errors.FeatureNotSupported) and "data-modifying" in str(error):
            return WritingQueryRefused()
        if isinstance(error, errors.QueryCanceled):
            return SourceError(
                _(
                    "The query took longer than %(seconds)s seconds and was stopped. Read fewer "
                    "rows or ask for an index on the cursor column."
                )
                % {"seconds": int(statement_timeout_seconds())}
            )
        if isinstance(error, errors.UndefinedTable):
            return SourceError(
                _("The database says: %(error)s. Check the table or view name and the schema.")
                % {"error": error.diag.message_primary or _first_line(str(error))}
            )
        if isinstance(error, errors.InsufficientPrivilege):
            return SourceError(
                _("The database says: %(error)s. Grant this user the right to read it.")
                % {"error": error.diag.message_primary or _first_line(str(error))}
            )
        if isinstance(error, psycopg.OperationalError):
            return SourceError(
                _("The connection to the source was lost: %(error)s")
                % {"error": _first_line(str(error))}
            )
        primary = error.diag.message_primary if error.diag else None
        position = error.diag.statement_position if error.diag else None
        if query and position and (start := text.find(query)) >= 0:
            place = int(position) - start
            if 0 < place <= len(query) + 1:
                return SourceError(
                    _("The database says: %(error)s (at character %(position)s of the query).")
                    % {"error": primary or _first_line(str(error)), "position": place}
                )
        return SourceError(
            _("The database says: %(error)s") % {"error": primary or _first_line(str(error))}
        )

    # The interface ----------------------------------------------------------------------------

    def test(self, read: Read | None = None) -> list[StepResult]:
        state: dict[str, Any] = {}
        stack = ExitStack()

        def connect():
            state["connection"] = stack.enter_context(self._connection())
            return _("Connected and signed in as “%(user)s”.") % {
                "user": self.settings.get("user") or ""
            }

        def read_only():
            with state["connection"].cursor() as cursor:
                cursor.execute("SHOW transaction_read_only")
                row = cursor.fetchone()
            if not row or row[0] != "on":
                raise SourceError(_("The session could not be made read-only."))
            return _("The session only reads.")

        def read_step():
            if read is None or not (read.table or read.query):
                raise StepSkipped(_("Nothing to read has been chosen yet."))
            columns = self._columns_of(state["connection"], read)
            self.check_cursor_column(read, [column for column, _oid in columns])
            return _("%(count)s columns can be read.") % {"count": len(columns)}

        try:
            return run_steps(
                [
                    (_("Connect and sign in"), connect),
                    (_("Read-only session"), read_only),
                    (_("Read what was chosen"), read_step),
                ]
            )
        finally:
            stack.close()

    def columns(self, read: Read) -> list[Column]:
        with self._connection() as connection:
            return [column for column, _oid in self._columns_of(connection, read)]

    def preview(self, read: Read, limit: int = PREVIEW_ROWS) -> tuple[list[Column], list[tuple]]:
        with self._connection() as connection:
            found = self._columns_of(connection, read)
            self.check_cursor_column(read, [column for column, _oid in found])
            statement, query = self._select(Read(read.table, read.query))
            statement = sql.SQL("{} LIMIT {}").format(statement, sql.Literal(limit))
            with connection.cursor() as cursor:
                self._execute(cursor, statement, query)
                rows = cursor.fetchall()
            return [column for column, _oid in found], rows

    def batches(self, read: Read, batch_size: int) -> Iterator[tuple[list[Column], list[tuple]]]:
        with self._connection() as connection:
            columns = [column for column, _oid in self._columns_of(connection, read)]
            self.check_cursor_column(read, columns)
            self.check_key_column(read, columns)
            chosen = chosen_columns(read, columns)
            names = None
            if chosen is not None:
                columns = chosen
                names = sql.SQL(", ").join(sql.Identifier(column.name) for column in chosen)
            statement, query = self._select(read, names)
            # A server-side cursor: psycopg makes a fetched batch's rows in C, where ``COPY ...
            # TO STDOUT`` hands them over one Python call each (0.11 against 0.36 CPU-s for
            # 200,000 rows). Each FETCH is a statement of its own, under the timeout.
            text = sql.SQL("DECLARE source_rows NO SCROLL CURSOR FOR {}").format(statement)
            text = text.as_string(connection)
            fetch = f"FETCH FORWARD {int(batch_size)} FROM source_rows"
            with connection.cursor() as cursor:
                try:
                    cursor.execute(text)
                    while batch := cursor.execute(fetch).fetchall():
                        yield columns, batch
                except psycopg.Error as error:
                    raise self._query_error(error, text, query) from None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


_LIBPQ_PREFIX = re.compile(
    r"^(?:connection (?:failed|is bad): )?"
    r'(?:connection to server at "[^"]*"(?:, port \d+)? failed: )?'
)


def _libpq_reason(text: str) -> str:
    """libpq's reason without the "connection to server at ... failed:" that precedes it."""
    return _LIBPQ_PREFIX.sub("", _first_line(text))
