"""Benchmark the data foundation on PostgreSQL: import a 1,000,000-row CSV, refresh a segment.

Prints progress, then one JSON object as the last line: {"profiles", "import_s", "refresh_s", ...}.
Uses its own database (bench_relay) so that it never touches test or demo data.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
import time
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

    from segments.demo import demo_profiles
    from segments.importing import import_csv
    from segments.models import Segment
    from segments.services import segment_refresh

    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "profiles.csv"
        started = time.monotonic()
        _write_csv(path, demo_profiles(PROFILES))
        print(
            f"wrote {PROFILES:,} rows ({path.stat().st_size / 1e6:.0f} MB)"
            f" in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )

        started = time.monotonic()
        with path.open("rb") as stream:
            report = import_csv(stream)
        import_s = time.monotonic() - started
        print(f"import: {report.created:,} created in {import_s:.1f}s", file=sys.stderr)

        started = time.monotonic()
        with path.open("rb") as stream:
            reimport = import_csv(stream)
        reimport_s = time.monotonic() - started
        print(f"re-import: {reimport.unchanged:,} unchanged in {reimport_s:.1f}s", file=sys.stderr)

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

    print(
        json.dumps(
            {
                "profiles": report.created,
                "import_s": round(import_s, 2),
                "reimport_unchanged_s": round(reimport_s, 2),
                "segment_members": refreshed.member_count,
                "refresh_s": round(refresh_s, 2),
                "rerefresh_s": round(rerefresh_s, 2),
            }
        )
    )


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
