"""Benchmark the data foundation on PostgreSQL: import a 1,000,000-row CSV, refresh segments.

The import is measured against its floor (``import_floor_s``: ``COPY`` of the same file into a
staging table and one set-based upsert, same run, same empty table), then imported again
unchanged (``reimport_unchanged_s``, ``reimport_dead_tuples``) and with 1% of the rows changed
(``reimport_1pct_s``, ``reimport_1pct_dead_tuples``); each with its CPU seconds per process
(this one, its PostgreSQL backend) and this process's peak resident memory.

Prints progress, then one JSON object as the last line: {"profiles", "import_s",
"import_ratio", "reimport_ratio", "refresh_s", "refresh_date_rule_s", ...}.
Uses its own database (``BENCH_DATABASE_URL``, default bench_relay) so that it never touches
test or demo data; ``BENCH_PROFILES`` sets the size.
"""

from __future__ import annotations

import csv
import gc
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROFILES = int(os.environ.get("BENCH_PROFILES", "1000000"))
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_relay"
)


def main() -> None:
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    _recreate_database(BENCH_DATABASE_URL)

    import django

    django.setup()
    from django.core.management import call_command

    from segments.catalogue import recount_fields
    from segments.demo import demo_profiles
    from segments.models import Segment
    from segments.services import segment_refresh

    call_command("migrate", verbosity=0)
    tune_garbage_collection()  # as the Celery worker that runs imports does
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "profiles.csv"
        started = time.monotonic()
        _write_csv(path, demo_profiles(PROFILES))
        print(
            f"wrote {PROFILES:,} rows ({path.stat().st_size / 1e6:.0f} MB)"
            f" in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )
        changed_path = Path(folder) / "profiles-1pct.csv"
        changed_rows = _write_changed_copy(path, changed_path, every=100)

        floor = _measured(lambda: _import_floor(path), "import floor")
        _empty_profiles()
        imported = _measured(lambda: _import(path), "import")
        report = imported.result
        dead_before = _dead_tuples()
        reimported = _measured(lambda: _import(path), "re-import, nothing changed")
        reimport = reimported.result
        assert (reimport.created, reimport.updated) == (0, 0), "an unchanged file wrote rows"
        dead_tuples = _dead_tuples() - dead_before
        dead_before = _dead_tuples()
        changed = _measured(lambda: _import(changed_path), "re-import, 1% changed")
        assert changed.result.updated == changed_rows, (changed.result.updated, changed_rows)
        changed_dead_tuples = _dead_tuples() - dead_before
    started = time.monotonic()
    recount_fields()  # each import ends with one: the field catalogue's counts, grouped by key
    recount_s = time.monotonic() - started
    print(f"field recount in {recount_s:.2f}s", file=sys.stderr)

    segment = Segment.objects.create(
        name="Everyone with an email",
        rules={"match": "all", "conditions": [{"field": "email", "operator": "is_not_empty"}]},
    )
    started = time.monotonic()
    refreshed = segment_refresh(segment_id=segment.pk)
    refresh_s = time.monotonic() - started
    started = time.monotonic()
    segment_refresh(segment_id=segment.pk)
    rerefresh_s = time.monotonic() - started
    print(f"refresh: {refreshed.member_count:,} members in {refresh_s:.1f}s", file=sys.stderr)
    segment_figures = _bench_segment_kinds()

    print(
        json.dumps(
            {
                "profiles": report.created,
                "import_s": round(imported.seconds, 2),
                "import_floor_s": round(floor.seconds, 2),
                "import_ratio": round(imported.seconds / floor.seconds, 2),
                "import_cpu_s": imported.cpu_figures(),
                "import_floor_cpu_s": floor.cpu_figures(),
                "import_cpu_ratio": round(imported.cpu / floor.cpu, 2),
                "reimport_unchanged_s": round(reimported.seconds, 2),
                "reimport_ratio": round(reimported.seconds / imported.seconds, 2),
                "reimport_cpu_s": reimported.cpu_figures(),
                "reimport_cpu_ratio": round(reimported.cpu / imported.cpu, 2),
                "reimport_dead_tuples": dead_tuples,
                "reimport_1pct_s": round(changed.seconds, 2),
                "reimport_1pct_updated": changed.result.updated,
                # One old version per changed row, none for the others.
                "reimport_1pct_dead_tuples": changed_dead_tuples,
                "import_peak_rss_mb": round(
                    max(m.peak_rss_mb for m in (imported, reimported, changed)), 1
                ),
                "recount_fields_s": round(recount_s, 2),
                "segment_members": refreshed.member_count,
                "refresh_s": round(refresh_s, 2),
                "rerefresh_s": round(rerefresh_s, 2),
                **segment_figures,
            }
        )
    )


def _bench_segment_kinds() -> dict:
    """A relative-date rule over every profile, the difference of two ~500,000-member segments,
    and a refresh with nothing changed (targets: 5 s, 5 s, 0.2 s)."""
    from datetime import UTC, datetime

    from segments.services import segment_refresh, segment_save

    def save(name: str, rules: dict):
        return segment_save(segment=None, name=name, description="", rules=rules, user=None)

    def orders_between(low: int, high: int) -> dict:
        return {
            "match": "all",
            "conditions": [
                {"field": "orders", "operator": "between", "value": [str(low), str(high)]}
            ],
        }

    # The demo's sign-ups run from 2018 to early 2026; on this day a year back holds about 1/8.
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    recent = save(
        "Signed up in the last 365 days",
        {
            "match": "all",
            "conditions": [{"field": "signup_date", "operator": "in_last_days", "value": 365}],
        },
    )
    started = time.monotonic()
    recent = segment_refresh(segment_id=recent.pk, now=now)
    date_rule_s = time.monotonic() - started
    print(f"date rule: {recent.member_count:,} members in {date_rule_s:.2f}s", file=sys.stderr)

    started = time.monotonic()
    unchanged = segment_refresh(segment_id=recent.pk, now=now)
    unchanged_s = time.monotonic() - started
    assert unchanged.refreshes.first().unchanged, "the second refresh should find nothing changed"
    print(f"unchanged refresh in {unchanged_s:.3f}s", file=sys.stderr)

    low = segment_refresh(segment_id=save("Orders 0-19", orders_between(0, 19)).pk)
    high = segment_refresh(segment_id=save("Orders 10-29", orders_between(10, 29)).pk)
    difference = save("Orders 0-9", {"combine": "difference", "segments": [low.pk, high.pk]})
    started = time.monotonic()
    difference = segment_refresh(segment_id=difference.pk)
    difference_s = time.monotonic() - started
    print(
        f"difference of {low.member_count:,} and {high.member_count:,}:"
        f" {difference.member_count:,} members in {difference_s:.2f}s",
        file=sys.stderr,
    )
    return {
        "date_rule_members": recent.member_count,
        "refresh_date_rule_s": round(date_rule_s, 2),
        "refresh_unchanged_s": round(unchanged_s, 3),
        "difference_inputs": [low.member_count, high.member_count],
        "difference_members": difference.member_count,
        "refresh_difference_s": round(difference_s, 2),
    }


TICKS = os.sysconf("SC_CLK_TCK")


def tune_garbage_collection() -> None:
    """Imports run in the Celery worker, which tunes the collector (``config.celery_app``);
    the bench imports in its own process, tuned the same."""
    from config.celery_app import GC_YOUNG_THRESHOLD

    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def backend_pid() -> int:
    """The PostgreSQL backend serving this process's Django connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def peak_rss_mb(pid: str | int = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss(pid: str | int = "self") -> None:
    """Start measuring the peak resident memory again (Linux: ``clear_refs`` 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Measured:
    """A stage's wall-clock seconds, its CPU seconds per process (this one, the database
    backend serving it), its peak resident memory and what it returned. CPU seconds are read
    per process, so other work on the machine disturbs them less than the clock."""

    seconds: float
    client_cpu: float
    postgres_cpu: float
    peak_rss_mb: float
    result: object

    @property
    def cpu(self) -> float:
        return self.client_cpu + self.postgres_cpu

    def cpu_figures(self) -> dict:
        return {"client": round(self.client_cpu, 2), "postgres": round(self.postgres_cpu, 2)}


def _measured(stage, label: str) -> Measured:
    backend = backend_pid()
    reset_peak_rss()
    client, postgres = _own_cpu_s(), process_cpu_s(backend)
    started = time.monotonic()
    result = stage()
    measured = Measured(
        seconds=time.monotonic() - started,
        client_cpu=_own_cpu_s() - client,
        postgres_cpu=process_cpu_s(backend) - postgres,
        peak_rss_mb=peak_rss_mb(),
        result=result,
    )
    print(
        f"{label}: {measured.seconds:.1f}s, CPU seconds {measured.cpu_figures()},"
        f" peak RSS {measured.peak_rss_mb:.0f} MB {_counts(result)}",
        file=sys.stderr,
    )
    return measured


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _counts(report) -> str:
    if report is None:
        return ""
    return f"({report.created:,} created, {report.updated:,} updated, {report.unchanged:,} same)"


def _import(path: Path):
    from segments.importing import import_csv

    with path.open("rb") as stream:
        return import_csv(stream, recount_fields=False)  # as the import's task: counts follow


def _import_floor(path: Path) -> None:
    """The least an import can do, as one statement over a staging table: ``COPY`` the file
    (PostgreSQL parses the CSV) and upsert every row, attributes as text, no checks."""
    from django.db import connection, transaction

    from segments.importing import FIXED_COLUMNS

    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    columns = [f"c{index}" for index in range(len(header))]
    fixed = {name: f"c{header.index(name)}" for name in FIXED_COLUMNS}
    pairs = ", ".join(
        f"'{name}', nullif({column}, '')"
        for name, column in zip(header, columns, strict=True)
        if name not in FIXED_COLUMNS
    )
    copy_sql = (
        "COPY floor_rows FROM STDIN (FORMAT csv, HEADER true, FORCE_NOT_NULL ("
        + ", ".join(columns)
        + "))"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            "CREATE TEMP TABLE floor_rows ("
            + ", ".join(f"{column} text" for column in columns)
            + ") ON COMMIT DROP"
        )
        with (
            path.open("rb") as stream,
            cursor.cursor.copy(copy_sql) as copy,
        ):
            while chunk := stream.read(1 << 20):
                copy.write(chunk)
        cursor.execute(
            f"""
            INSERT INTO segments_profile (customer_id, email, first_name, last_name,
                                          attributes, created_at, updated_at)
            SELECT {fixed["customer_id"]}, {fixed["email"]}, {fixed["first_name"]},
                   {fixed["last_name"]}, jsonb_strip_nulls(jsonb_build_object({pairs})),
                   now(), now()
            FROM floor_rows
            ON CONFLICT (customer_id) DO UPDATE
            SET email = EXCLUDED.email, first_name = EXCLUDED.first_name,
                last_name = EXCLUDED.last_name, attributes = EXCLUDED.attributes,
                updated_at = now()
            WHERE (segments_profile.email, segments_profile.first_name,
                   segments_profile.last_name, segments_profile.attributes)
                  IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.first_name, EXCLUDED.last_name,
                                    EXCLUDED.attributes)
            """
        )


def _empty_profiles() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE segments_profile CASCADE")


def _dead_tuples() -> int:
    """Dead row versions in the profile table (the statistics collector's count)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'segments_profile'"
        )
        return cursor.fetchone()[0]


def _write_changed_copy(path: Path, changed_path: Path, *, every: int) -> int:
    """A copy of the file with the city of every ``every``-th row changed; how many."""
    changed = 0
    with (
        path.open(encoding="utf-8", newline="") as source,
        changed_path.open("w", encoding="utf-8", newline="") as target,
    ):
        reader, writer = csv.reader(source), csv.writer(target)
        header = next(reader)
        city = header.index("city")
        writer.writerow(header)
        for number, row in enumerate(reader):
            if number % every == 0:
                row[city] += " (moved)"
                changed += 1
            writer.writerow(row)
    return changed


def _write_csv(path: Path, records) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        names = None
        for record in records:
            if names is None:
                names = list(record.attributes)
                writer.writerow(["customer_id", "email", "first_name", "last_name", *names])
            writer.writerow([*record[1:5], *(record.attributes[name] for name in names)])


def _recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
