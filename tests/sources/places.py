"""The places the source tests read from (a plugin of tests/conftest.py): a second PostgreSQL
database, a MariaDB database and Parquet / CSV files, each made for the session and named after
the test database, so that parallel runs of the suite (other work trees, xdist workers) never
share one.

MariaDB is required: when it cannot be reached the tests fail and say how to start it
(``make services``); they are never skipped."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pymysql
import pytest
from django.conf import settings

#: One row of the people table every place holds: id, customer id, e-mail, first and last
#: name, score, active, born, updated_at (a date-time without a time zone: UTC).
Row = tuple[int, Any, Any, Any, Any, Any, Any, Any, Any]
COLUMNS = (
    "id",
    "customer",
    "email",
    "first_name",
    "last_name",
    "score",
    "active",
    "born",
    "updated_at",
)
START = dt.datetime(2026, 1, 1, 8, 0)


def people(count: int, start: int = 1) -> list[Row]:
    return [
        (
            n,
            f"C{n:05d}",
            f"person{n}@example.com",
            f"First{n}",
            f"Last{n}",
            n * 1.5,
            n % 2 == 0,
            dt.date(1990, 1, 1) + dt.timedelta(days=n),
            START + dt.timedelta(minutes=n),
        )
        for n in range(start, start + count)
    ]


def _session_name(suffix: str) -> str:
    base = settings.DATABASES["default"]["NAME"] or "test"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return re.sub(r"\W", "_", f"{base}_{worker}_{suffix}".replace("__", "_")).lower()[:60]


@dataclass
class Place:
    """A place holding a people table: the kind, its settings and secrets, and how to fill it."""

    kind: str
    connection_settings: dict[str, Any]
    secrets: dict[str, Any] = field(default_factory=dict)
    read_table: str = "people"

    def write(self, rows: list[Row], table: str = "people") -> None:
        raise NotImplementedError

    def execute(self, statement: str) -> None:
        raise NotImplementedError


# PostgreSQL: a second database on the test server ----------------------------------------------


class PostgreSQLPlace(Place):
    def _connect(self):
        return psycopg.connect(
            host=self.connection_settings["host"],
            port=self.connection_settings["port"],
            user=self.connection_settings["user"],
            password=self.secrets.get("password") or None,
            dbname=self.connection_settings["database"],
            autocommit=True,
        )

    def write(self, rows: list[Row], table: str = "people") -> None:
        with self._connect() as connection:
            connection.execute(f'DROP TABLE IF EXISTS "{table}"')
            connection.execute(
                f'CREATE TABLE "{table}" (id int, customer text, email text, first_name text,'
                " last_name text, score double precision, active boolean, born date,"
                " updated_at timestamp)"
            )
            with (
                connection.cursor() as cursor,
                cursor.copy(f'COPY "{table}" ({", ".join(COLUMNS)}) FROM STDIN') as copy,
            ):
                for row in rows:
                    copy.write_row(row)

    def execute(self, statement: str) -> None:
        with self._connect() as connection:
            connection.execute(statement)


@pytest.fixture(scope="session")
def postgresql_source_database(django_db_setup, django_db_blocker):
    own = settings.DATABASES["default"]
    name = _session_name("source")
    admin = psycopg.connect(
        host=own["HOST"] or "127.0.0.1",
        port=own["PORT"] or 5432,
        user=own["USER"],
        password=own["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    yield {
        "host": own["HOST"] or "127.0.0.1",
        "port": int(own["PORT"] or 5432),
        "user": own["USER"],
        "password": own["PASSWORD"] or "",
        "database": name,
    }
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def postgresql_place(postgresql_source_database) -> PostgreSQLPlace:
    details = dict(postgresql_source_database)
    password = details.pop("password")
    return PostgreSQLPlace(
        "postgresql", {**details, "sslmode": "disable"}, {"password": password} if password else {}
    )


# MariaDB / MySQL: a database on the local server -----------------------------------------------

MYSQL_HOST = os.environ.get("SOURCE_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("SOURCE_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("SOURCE_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("SOURCE_TEST_MYSQL_PASSWORD", "")


def _mysql(database: str | None = None):
    return pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        password=MYSQL_PASSWORD,
        database=database,
        autocommit=True,
        connect_timeout=5,
    )


class MySQLPlace(Place):
    def write(self, rows: list[Row], table: str = "people") -> None:
        connection = _mysql(self.connection_settings["database"])
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS `{table}`")
            cursor.execute(
                f"CREATE TABLE `{table}` (id int, customer varchar(255), email varchar(255),"
                " first_name varchar(200), last_name varchar(200), score double, active bool,"
                " born date, updated_at datetime(6)) CHARACTER SET utf8mb4"
            )
            cursor.executemany(
                f"INSERT INTO `{table}` ({', '.join(COLUMNS)}) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        connection.close()

    def execute(self, statement: str) -> None:
        connection = _mysql(self.connection_settings["database"])
        with connection.cursor() as cursor:
            cursor.execute(statement)
        connection.close()


@pytest.fixture(scope="session")
def mysql_source_database():
    try:
        admin = _mysql()
    except pymysql.err.MySQLError as error:
        pytest.fail(
            f"The source tests need a MariaDB (or MySQL) server at {MYSQL_HOST}:{MYSQL_PORT} "
            f"for user {MYSQL_USER!r} and could not reach it ({error}). Start it with "
            "`make services` (it installs mariadb-server when missing), or point "
            "SOURCE_TEST_MYSQL_HOST / _PORT / _USER / _PASSWORD at one.",
            pytrace=False,
        )
    name = _session_name("source")
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield name
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


@pytest.fixture
def mysql_place(mysql_source_database) -> MySQLPlace:
    return MySQLPlace(
        "mysql",
        {
            "host": MYSQL_HOST,
            "port": MYSQL_PORT,
            "user": MYSQL_USER,
            "database": mysql_source_database,
            "ssl_mode": "disabled",
        },
        {"password": MYSQL_PASSWORD} if MYSQL_PASSWORD else {},
    )


# Files: Parquet written by DuckDB --------------------------------------------------------------


class ParquetPlace(Place):
    def write(self, rows: list[Row], table: str = "people") -> None:
        path = Path(self.connection_settings["path"])
        connection = duckdb.connect(":memory:")
        connection.execute(
            "CREATE TABLE people (id INTEGER, customer VARCHAR, email VARCHAR,"
            " first_name VARCHAR, last_name VARCHAR, score DOUBLE, active BOOLEAN, born DATE,"
            " updated_at TIMESTAMP)"
        )
        if rows:
            connection.executemany(
                "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [list(r) for r in rows]
            )
        connection.execute(f"COPY people TO '{path}' (FORMAT parquet)")
        connection.close()

    def execute(self, statement: str) -> None:
        raise NotImplementedError("a file is only written whole")


@pytest.fixture
def parquet_place(tmp_path) -> ParquetPlace:
    return ParquetPlace("file", {"path": str(tmp_path / "people.parquet")}, read_table="")
