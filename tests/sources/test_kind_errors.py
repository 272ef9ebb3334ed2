"""The bad inputs of issue 25, each a message a person can act on, from real servers."""

from __future__ import annotations

import socket
import threading
import time

import psycopg
import pytest

from sources.kinds.base import Read, SourceError, StepStatus
from sources.kinds.duckdb.kind import DuckDBFileSource
from sources.kinds.mysql.kind import MySQLSource
from sources.kinds.postgresql.kind import PostgreSQLSource
from tests.sources.places import people


@pytest.fixture
def silent_server():
    """A port that takes connections and never says a word (a host that does not answer)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def failed_step(steps):
    return next(step for step in steps if step.status == StepStatus.FAILED)


@pytest.mark.parametrize("kind_class", [PostgreSQLSource, MySQLSource])
def test_a_host_that_does_not_answer_is_given_up_within_the_connect_timeout(
    kind_class, silent_server, settings
):
    settings.SOURCE_CONNECT_TIMEOUT_SECONDS = 2
    kind = kind_class({"host": "127.0.0.1", "port": silent_server, "user": "u", "database": "d"})
    started = time.monotonic()
    step = failed_step(kind.test())
    assert time.monotonic() - started < 10
    assert "did not answer within 2 seconds" in str(step.message)


@pytest.mark.parametrize("kind_class", [PostgreSQLSource, MySQLSource])
def test_an_unknown_host_is_named(kind_class):
    kind = kind_class({"host": "no-such-host.invalid", "user": "u", "database": "d"})
    assert "No server named “no-such-host.invalid”" in str(failed_step(kind.test()).message)


@pytest.mark.parametrize("kind_class", [PostgreSQLSource, MySQLSource])
def test_a_closed_port_is_a_refused_connection(kind_class):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kind = kind_class({"host": "127.0.0.1", "port": port, "user": "u", "database": "d"})
    assert "refused the connection" in str(failed_step(kind.test()).message)


def test_a_wrong_mariadb_password_says_so(mysql_place):
    kind = MySQLSource(mysql_place.connection_settings, {"password": "not-the-password"})
    message = str(failed_step(kind.test()).message)
    assert "refused the user name or password" in message and "not-the-password" not in message


def test_a_wrong_postgresql_password_says_so():
    """The test server trusts local connections, so the server's refusal is given as it comes."""
    kind = PostgreSQLSource({"user": "reader"}, {"password": "s3cret"})
    error = kind._connect_error(
        psycopg.OperationalError(
            'connection failed: FATAL:  password authentication failed for user "reader"'
        )
    )
    assert "refused the user name or password for “reader”" in str(error)
    assert "s3cret" not in str(error)


def test_an_unknown_database_is_named(postgresql_place, mysql_place):
    for kind_class, place in ((PostgreSQLSource, postgresql_place), (MySQLSource, mysql_place)):
        kind = kind_class({**place.connection_settings, "database": "nowhere"}, place.secrets)
        assert "no database named “nowhere”" in str(failed_step(kind.test()).message)


def test_a_postgresql_syntax_error_gives_its_place_in_the_query(postgresql_place):
    postgresql_place.write(people(3))
    kind = PostgreSQLSource(postgresql_place.connection_settings, postgresql_place.secrets)
    with pytest.raises(SourceError) as caught:
        kind.preview(Read(query="SELECT customer FORM people"))
    assert str(caught.value) == (
        'The database says: syntax error at or near "people" (at character 22 of the query).'
    )


def test_a_mariadb_syntax_error_quotes_the_place(mysql_place):
    mysql_place.write(people(3))
    kind = MySQLSource(mysql_place.connection_settings, mysql_place.secrets)
    with pytest.raises(SourceError, match="near 'people"):
        kind.preview(Read(query="SELECT customer FORM people"))


def test_a_missing_table_is_named(postgresql_place, mysql_place):
    for kind_class, place in ((PostgreSQLSource, postgresql_place), (MySQLSource, mysql_place)):
        kind = kind_class(place.connection_settings, place.secrets)
        with pytest.raises(SourceError, match="Check the table or view name"):
            kind.columns(Read(table="no_such_table"))


def test_a_data_changing_cte_is_refused_by_postgresql(postgresql_place):
    postgresql_place.write(people(3))
    kind = PostgreSQLSource(postgresql_place.connection_settings, postgresql_place.secrets)
    with pytest.raises(SourceError, match="only read"):
        kind.preview(Read(query="WITH gone AS (DELETE FROM people RETURNING *) SELECT * FROM gone"))
    with pytest.raises(SourceError, match="syntax error"):  # one statement only
        kind.preview(Read(query="SELECT 1; DELETE FROM people"))
    assert len(kind.preview(Read(table="people"))[1]) == 3


def test_a_query_over_the_statement_timeout_is_stopped(postgresql_place, mysql_place, settings):
    settings.SOURCE_STATEMENT_TIMEOUT_SECONDS = 0.5
    pg = PostgreSQLSource(postgresql_place.connection_settings, postgresql_place.secrets)
    with pytest.raises(SourceError, match="took longer than"):
        pg.preview(Read(query="SELECT pg_sleep(3)"))
    maria = MySQLSource(mysql_place.connection_settings, mysql_place.secrets)
    with pytest.raises(SourceError, match="took longer than"):
        maria.preview(Read(query="SELECT SLEEP(3) AS pause, 1 AS x FROM DUAL"))


def test_a_missing_file_is_named(tmp_path):
    kind = DuckDBFileSource({"path": str(tmp_path / "gone.parquet")})
    assert "could not be read" in str(failed_step(kind.test()).message)


def test_a_csv_file_is_read_too(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("customer,email,joined\nC1,a@example.com,2026-01-02\nC2,,2026-01-03\n")
    kind = DuckDBFileSource({"path": str(path)})
    columns, rows = kind.preview(Read())
    assert [(c.name, c.field_type) for c in columns] == [
        ("customer", "text"),
        ("email", "text"),
        ("joined", "date"),
    ]
    assert [row[0] for row in rows] == ["C1", "C2"]
