"""Benchmark the sources (issue 25): 1,000,000 rows from a PostgreSQL database and from MariaDB
into an empty profile table, each beside its floor (the rows copied by hand, same run), and an
incremental run after 1% of the rows changed.

Prints progress, then one JSON object as the last line: {"source_rows", "source_pg_s",
"source_pg_floor_s", "source_pg_incremental_s", "source_recount_s" (the field catalogue's
recount, which a run leaves to a task, after the full sync), "source_mysql_s",
"source_mysql_floor_s", "source_peak_rss_mb"}. Uses databases of its own
(``BENCH_SOURCES_DATABASE_URL``, by default bench_sources; its name + "_source" beside it for
the PostgreSQL source; its name on MariaDB; or ``BENCH_SOURCES_SOURCE_DATABASE`` and
``BENCH_SOURCES_MYSQL_DATABASE``), so it never touches test or demo data.
``BENCH_SOURCE_ROWS``: how many rows (1,000,000).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ROWS = int(os.environ.get("BENCH_SOURCE_ROWS", "1000000"))
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_SOURCES_DATABASE_URL",
    os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_sources"),
)
#: The source databases (PostgreSQL's on the bench's server, and MariaDB's): named after the
#: bench's database unless given, so that two benches on one server never share one.
SOURCE_DATABASE = os.environ.get(
    "BENCH_SOURCES_SOURCE_DATABASE", BENCH_DATABASE_URL.rsplit("/", 1)[1] + "_source"
)
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
MYSQL_DATABASE = os.environ.get(
    "BENCH_SOURCES_MYSQL_DATABASE", BENCH_DATABASE_URL.rsplit("/", 1)[1]
)
COLUMNS = "customer, email, first_name, last_name, score, active, born, updated_at"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    import psycopg
    import pymysql

    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    server = BENCH_DATABASE_URL.rsplit("/", 1)[0]
    _recreate(server, BENCH_DATABASE_URL.rsplit("/", 1)[1])
    _recreate(server, SOURCE_DATABASE)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from config.celery_app import app

    # A run leaves the field catalogue's recount to a task; the bench times it apart
    # (``source_recount_s``), and queues nothing on a broker no worker reads.
    app.conf.broker_url = "memory://"

    from segments.catalogue import recount_fields
    from segments.models import Profile
    from sources import services
    from sources.kinds.base import cursor_to_json
    from sources.models import Source, SourceRun

    call_command("migrate", verbosity=0)
    profiles = Profile._meta.db_table

    with psycopg.connect(f"{server}/{SOURCE_DATABASE}", autocommit=True) as source_db:
        source_db.execute(
            "CREATE TABLE people (id int PRIMARY KEY, customer text, email text,"
            " first_name text, last_name text, score double precision, active boolean,"
            " born date, updated_at timestamp)"
        )
        source_db.execute(
            "INSERT INTO people SELECT n, 'C' || lpad(n::text, 8, '0'),"
            " 'person' || n || '@example.com', 'First' || n, 'Last' || n, n * 1.5, n %% 2 = 0,"
            " DATE '1990-01-01' + n %% 10000, TIMESTAMP '2026-01-01' + n * interval '1 second'"
            " FROM generate_series(1, %s) AS n",
            [ROWS],
        )
    log(f"PostgreSQL source: {ROWS:,} rows")

    def run(source: Source) -> tuple[float, SourceRun]:
        started = time.monotonic()
        result = services.run_execute(
            run_id=SourceRun.objects.create(source=source, sync_mode=source.sync_mode).pk
        )
        return time.monotonic() - started, result

    def empty_profiles() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {profiles} CASCADE")

    def floor(rows) -> float:
        """The rows (customer, email, first, last, attributes JSON) copied into the profiles by
        hand: no checks, no comparison, one COPY."""
        started = time.monotonic()
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                f"COPY {profiles} (customer_id, email, first_name, last_name, attributes)"
                " FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        elapsed = time.monotonic() - started
        empty_profiles()
        return elapsed

    mapping = {
        "customer_id": "customer",
        "email": "email",
        "first_name": "first_name",
        "last_name": "last_name",
        "attributes": {"score": "score", "active": "active", "born": "born"},
    }

    # PostgreSQL: the floor, the full sync, then 1% changed and an incremental run.
    def postgresql_rows():
        with (
            psycopg.connect(f"{server}/{SOURCE_DATABASE}") as source_db,
            source_db.cursor() as cur,
            cur.copy(
                "COPY (SELECT customer, email, first_name, last_name, json_build_object("
                "'score', score, 'active', CASE WHEN active THEN 'true' ELSE 'false' END,"
                " 'born', born) FROM people) TO STDOUT"
            ) as copy,
        ):
            yield from copy.rows()

    source_pg_floor_s = floor(postgresql_rows())
    log(f"PostgreSQL floor: {source_pg_floor_s:.1f}s")
    user, host_port = server.split("//", 1)[1].split("@", 1)
    host, _colon, port = host_port.partition(":")
    pg = services.source_save(
        name="Bench PostgreSQL",
        kind="postgresql",
        connection_settings={
            "host": host,
            "port": int(port or 5432),
            "database": SOURCE_DATABASE,
            "user": user,
            "sslmode": "disable",
        },
        read_table="people",
        mapping=mapping,
    )
    source_pg_s, result = run(pg)
    log(f"PostgreSQL full sync: {result.created_count:,} created in {source_pg_s:.1f}s")
    assert result.created_count == ROWS, result.error
    started = time.monotonic()
    recount_fields()
    source_recount_s = time.monotonic() - started
    log(f"The field catalogue's recount after it (a task): {source_recount_s:.1f}s")

    pg.sync_mode, pg.cursor_column = Source.SyncMode.INCREMENTAL, "updated_at"
    pg.save()
    with psycopg.connect(f"{server}/{SOURCE_DATABASE}", autocommit=True) as source_db:
        latest = source_db.execute("SELECT max(updated_at) FROM people").fetchone()[0]
        Source.objects.filter(pk=pg.pk).update(cursor_value=cursor_to_json(latest))
        source_db.execute(
            "UPDATE people SET email = 'changed' || id || '@example.com',"
            " updated_at = updated_at + interval '400 days' WHERE id % 100 = 0"
        )
    pg.refresh_from_db()
    source_pg_incremental_s, result = run(pg)
    log(
        f"PostgreSQL incremental: {result.rows_read:,} read, {result.updated_count:,} updated"
        f" in {source_pg_incremental_s:.1f}s"
    )
    empty_profiles()

    # MariaDB: the floor (an unbuffered cursor into COPY), then the full sync.
    admin = pymysql.connect(**MYSQL, autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {MYSQL_DATABASE}")
        cursor.execute(f"CREATE DATABASE {MYSQL_DATABASE}")
        cursor.execute(f"USE {MYSQL_DATABASE}")
        cursor.execute(
            f"CREATE TABLE {MYSQL_DATABASE}.people (id int PRIMARY KEY, customer varchar(20),"
            " email varchar(100), first_name varchar(50), last_name varchar(50), score double,"
            " active bool, born date, updated_at datetime)"
        )
        cursor.execute(
            f"INSERT INTO {MYSQL_DATABASE}.people SELECT seq, concat('C', lpad(seq, 8, '0')),"
            " concat('person', seq, '@example.com'), concat('First', seq),"
            " concat('Last', seq), seq * 1.5, seq % 2 = 0, DATE '1990-01-01' + INTERVAL"
            " seq % 10000 DAY, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND"
            f" FROM seq_1_to_{ROWS}"
        )
    log(f"MariaDB source: {ROWS:,} rows")

    def mysql_rows():
        reader = pymysql.connect(**MYSQL, database=MYSQL_DATABASE)
        cursor = reader.cursor(pymysql.cursors.SSCursor)
        cursor.execute(f"SELECT {COLUMNS} FROM people")
        for customer, email, first, last, score, active, born, _updated in cursor:
            yield (
                customer,
                email,
                first,
                last,
                json.dumps(
                    {"score": score, "active": "true" if active else "false", "born": str(born)}
                ),
            )
        reader.close()

    source_mysql_floor_s = floor(mysql_rows())
    log(f"MariaDB floor: {source_mysql_floor_s:.1f}s")
    maria = services.source_save(
        name="Bench MariaDB",
        kind="mysql",
        connection_settings={**MYSQL, "database": MYSQL_DATABASE, "ssl_mode": "disabled"},
        read_table="people",
        mapping=mapping,
    )
    source_mysql_s, result = run(maria)
    log(f"MariaDB full sync: {result.created_count:,} created in {source_mysql_s:.1f}s")
    assert result.created_count == ROWS, result.error
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {MYSQL_DATABASE}")

    print(
        json.dumps(
            {
                "source_rows": ROWS,
                "source_pg_s": round(source_pg_s, 2),
                "source_pg_floor_s": round(source_pg_floor_s, 2),
                "source_pg_incremental_s": round(source_pg_incremental_s, 2),
                "source_recount_s": round(source_recount_s, 2),
                "source_mysql_s": round(source_mysql_s, 2),
                "source_mysql_floor_s": round(source_mysql_floor_s, 2),
                # Linux counts ru_maxrss in kilobytes: the peak of this whole process.
                "source_peak_rss_mb": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                ),
            }
        )
    )


def _recreate(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
