"""MySQL and MariaDB, read with PyMySQL (pure Python: nothing to compile): a read-only
transaction in a session on UTC with a statement timeout; rows streamed with an unbuffered
server-side cursor (``SSCursor``)."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import FIELD_TYPE

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

_TYPE_NAMES = {
    value: name.lower()
    for name, value in vars(FIELD_TYPE).items()
    if name.isupper() and name not in ("CHAR", "INTERVAL")  # aliases of TINY and ENUM
}
_FIELD_TYPES = {
    FIELD_TYPE.DECIMAL: NUMBER,
    FIELD_TYPE.NEWDECIMAL: NUMBER,
    FIELD_TYPE.TINY: NUMBER,
    FIELD_TYPE.SHORT: NUMBER,
    FIELD_TYPE.LONG: NUMBER,
    FIELD_TYPE.LONGLONG: NUMBER,
    FIELD_TYPE.INT24: NUMBER,
    FIELD_TYPE.FLOAT: NUMBER,
    FIELD_TYPE.DOUBLE: NUMBER,
    FIELD_TYPE.YEAR: NUMBER,
    FIELD_TYPE.DATE: DATE,
    FIELD_TYPE.NEWDATE: DATE,
    FIELD_TYPE.DATETIME: DATETIME,
    FIELD_TYPE.TIMESTAMP: DATETIME,
}
SSL_MODES = ("disabled", "preferred", "required", "verify_ca", "verify_identity")
#: MySQL's and MariaDB's error numbers that have a message of their own here.
_ACCESS_DENIED = {1044, 1045, 1698}
_UNKNOWN_DATABASE = 1049
_READ_ONLY = {1792, 1290}
_TIMED_OUT = {1969, 3024, 1317}
_NO_SUCH_TABLE = {1146}
_CANNOT_CONNECT = {2003, 2005}
_CONNECTION_LOST = {2006, 2013}
_TLS_FAILED = 2026  # CR_SSL_CONNECTION_ERROR: no TLS offered, or the certificate refused


def quoted(name: str) -> str:
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))


def _column(item: tuple) -> Column:
    name, type_code, _display, length = item[:4]
    if type_code == FIELD_TYPE.TINY and length == 1:  # BOOL is TINYINT(1)
        return Column(name, "tinyint(1)", BOOLEAN)
    return Column(
        name, _TYPE_NAMES.get(type_code, str(type_code)), _FIELD_TYPES.get(type_code, TEXT)
    )


class MySQLSource(SourceKind):
    label = _("MySQL / MariaDB")
    setting_names = ("host", "port", "database", "user", "ssl_mode", "ssl_ca")
    settings_form = "sources.kinds.mysql.forms.MySQLSettingsForm"
    secret_names = ("password",)

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS the settings ask for, as PyMySQL takes it (None: PyMySQL's own "preferred",
        TLS when the server offers it, unverified, else none; ``disabled`` never gets here).
        Built here rather than from PyMySQL's dict, which would skip the host name check of
        ``verify_identity`` when no CA file is given."""
        mode = self.settings.get("ssl_mode") or "preferred"
        if mode in ("disabled", "preferred"):
            return None
        try:
            context = ssl.create_default_context(cafile=self.settings.get("ssl_ca") or None)
        except (OSError, ssl.SSLError) as error:
            raise SourceError(
                ca_file_unreadable(self.settings.get("ssl_ca") or "", error.strerror or str(error))
            ) from None
        if mode == "required":  # encrypted, the certificate not checked
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:  # verify_ca: a certificate the CA signed; verify_identity: for this host too
            context.check_hostname = mode == "verify_identity"
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def connection_arguments(self) -> dict[str, Any]:
        """What ``pymysql.connect`` is given (the password among it)."""
        mode = self.settings.get("ssl_mode") or "preferred"
        return {
            "host": self.settings.get("host") or "localhost",
            "port": int(self.settings.get("port") or 3306),
            "user": self.settings.get("user") or "",
            "password": self.secrets.get("password") or "",
            "database": self.settings.get("database") or None,
            "connect_timeout": connect_timeout_seconds(),
            # The greeting must come within the connect timeout too (a server that takes
            # the connection and says nothing); queries get the statement timeout below.
            "read_timeout": connect_timeout_seconds(),
            "charset": "utf8mb4",
            # A context makes TLS required: PyMySQL refuses a server that does not offer it.
            "ssl": self.tls_context(),
            "ssl_disabled": mode == "disabled",
            "autocommit": True,
        }

    @contextmanager
    def _connection(self) -> Iterator[pymysql.connections.Connection]:
        try:
            connection = pymysql.connect(**self.connection_arguments())
        except pymysql.err.MySQLError as error:
            raise self._error(error) from None
        # PyMySQL keeps the read timeout here only; the server stops a long query first.
        connection._read_timeout = int(statement_timeout_seconds()) + 30
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET time_zone = '+00:00'")
                try:  # MariaDB counts seconds, MySQL milliseconds (SELECTs only)
                    cursor.execute(
                        f"SET SESSION max_statement_time = {statement_timeout_seconds():.3f}"
                    )
                except pymysql.err.MySQLError:
                    milliseconds = int(statement_timeout_seconds() * 1000)
                    cursor.execute(f"SET SESSION max_execution_time = {milliseconds}")
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
                cursor.execute("START TRANSACTION READ ONLY")
            yield connection
        except pymysql.err.MySQLError as error:
            raise self._error(error) from None
        finally:
            with suppress(pymysql.err.Error):
                connection.close()

    def _error(self, error: pymysql.err.MySQLError, query: str = "") -> SourceError:
        code = error.args[0] if error.args and isinstance(error.args[0], int) else 0
        text = str(error.args[1]) if len(error.args) > 1 else str(error)
        host = self.settings.get("host") or "localhost"
        if code == _TLS_FAILED or "[SSL" in text:
            return self._tls_error(text)
        if code in _ACCESS_DENIED:
            return SourceError(
                _("The server refused the user name or password for “%(user)s”. Check both.")
                % {"user": self.settings.get("user") or ""}
            )
        if code == _UNKNOWN_DATABASE:
            return SourceError(
                _("The server has no database named “%(database)s”.")
                % {"database": self.settings.get("database") or ""}
            )
        if code in _CANNOT_CONNECT:
            if "Name or service not known" in text or "nodename nor servname" in text:
                return SourceError(
                    _("No server named “%(host)s” was found. Check the host name.") % {"host": host}
                )
            if "timed out" in text:
                return SourceError(
                    _(
                        "The server at “%(host)s” did not answer within %(seconds)s seconds. "
                        "Check the host and port, and that the server lets this application in."
                    )
                    % {"host": host, "seconds": connect_timeout_seconds()}
                )
            if "refused" in text:
                return SourceError(
                    _("The server at “%(host)s” refused the connection on port %(port)s.")
                    % {"host": host, "port": self.settings.get("port") or 3306}
                )
        if code in _CONNECTION_LOST or isinstance(error, pymysql.err.InterfaceError):
            if "timed out" in text:
                return SourceError(
                    _(
                        "The server at “%(host)s” did not answer within %(seconds)s seconds. "
                        "Check the host and port, and that the server lets this application in."
                    )
                    % {"host": host, "seconds": connect_timeout_seconds()}
                )
            return SourceError(
                _("The connection to the source was lost: %(error)s") % {"error": text}
            )
        if code in _READ_ONLY:
            return WritingQueryRefused()
        if code in _TIMED_OUT:
            return SourceError(
                _(
                    "The query took longer than %(seconds)s seconds and was stopped. Read fewer "
                    "rows or ask for an index on the cursor column."
                )
                % {"seconds": int(statement_timeout_seconds())}
            )
        if code in _NO_SUCH_TABLE:
            return SourceError(
                _("The database says: %(error)s. Check the table or view name and the schema.")
                % {"error": text}
            )
        return SourceError(_("The database says: %(error)s") % {"error": text})

    def _tls_error(self, text: str) -> SourceError:
        """PyMySQL's and the ssl module's TLS failures in words a person can act on."""
        host = self.settings.get("host") or "localhost"
        if "doesn't support" in text:  # PyMySQL: "SSL is required but the server doesn't ..."
            return SourceError(tls_not_offered(host, self.settings.get("ssl_mode") or "preferred"))
        failed = re.search(r"certificate verify failed: ([^(]*)", text)
        reason = failed.group(1).strip().rstrip(".") if failed else text
        if failed and "mismatch" in reason:
            return SourceError(certificate_for_another_name(host, reason, "verify_ca"))
        if failed:
            return SourceError(certificate_not_trusted(host, self.settings.get("ssl_ca") or ""))
        return SourceError(tls_failed(host, text))

    def _from(self, read: Read) -> str:
        if read.query:
            return f"({cleaned_query(read.query)}) AS source_rows"
        if not read.table:
            raise SourceError(_("Choose a table or view to read, or write a query."))
        return quoted(read.table)

    def _select(self, connection: Any, read: Read, names: str = "*") -> str:
        statement = f"SELECT {names} FROM {self._from(read)}"
        if read.cursor_column:
            cursor = quoted(read.cursor_column)
            if read.after is not None:
                statement += f" WHERE {cursor} >= {connection.escape(read.after)}"
            statement += f" ORDER BY {cursor}"
        elif read.key_column:  # NULL keys first (MySQL's order): read once, at the start
            key = quoted(read.key_column)
            if read.after_key is not None:
                statement += f" WHERE {key} > {connection.escape(read.after_key)}"
            statement += f" ORDER BY {key}"
        return statement

    def _columns_of(self, connection: Any, read: Read) -> list[Column]:
        with connection.cursor() as cursor:
            self._execute(cursor, f"SELECT * FROM {self._from(read)} LIMIT 0", read.query)
            description = cursor.description or []
        return [_column(item) for item in description]

    def _execute(self, cursor: Any, statement: str, query: str) -> None:
        try:
            cursor.execute(statement)
        except pymysql.err.MySQLError as error:
            raise self._error(error, query) from None

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
                try:  # MySQL 8 names it transaction_read_only; MariaDB keeps tx_read_only
                    cursor.execute("SELECT @@session.tx_read_only")
                except pymysql.err.MySQLError:
                    cursor.execute("SELECT @@session.transaction_read_only")
                row = cursor.fetchone()
            if not row or not int(row[0]):
                raise SourceError(_("The session could not be made read-only."))
            return _("The session only reads.")

        def read_step():
            if read is None or not (read.table or read.query):
                raise StepSkipped(_("Nothing to read has been chosen yet."))
            columns = self._columns_of(state["connection"], read)
            self.check_cursor_column(read, columns)
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
            return self._columns_of(connection, read)

    def preview(self, read: Read, limit: int = PREVIEW_ROWS) -> tuple[list[Column], list[tuple]]:
        with self._connection() as connection:
            columns = self._columns_of(connection, read)
            self.check_cursor_column(read, columns)
            statement = self._select(connection, Read(read.table, read.query))
            with connection.cursor() as cursor:
                self._execute(cursor, f"{statement} LIMIT {int(limit)}", read.query)
                return columns, list(cursor.fetchall())

    def batches(self, read: Read, batch_size: int) -> Iterator[tuple[list[Column], list[tuple]]]:
        with self._connection() as connection:
            columns = self._columns_of(connection, read)
            self.check_cursor_column(read, columns)
            self.check_key_column(read, columns)
            chosen = chosen_columns(read, columns)
            names = "*"
            if chosen is not None:
                columns = chosen
                names = ", ".join("`" + column.name.replace("`", "``") + "`" for column in chosen)
            statement = self._select(connection, read, names)
            cursor = connection.cursor(pymysql.cursors.SSCursor)
            try:
                self._execute(cursor, statement, read.query)
                while True:
                    try:
                        batch = cursor.fetchmany(batch_size)
                    except pymysql.err.MySQLError as error:
                        raise self._error(error, read.query) from None
                    if not batch:
                        break
                    yield columns, list(batch)
            finally:
                with suppress(pymysql.err.Error):
                    cursor.close()
