"""Benchmark the data foundation on PostgreSQL: import a 1,000,000-row CSV, refresh segments.

Prints progress, then one JSON object as the last line: {"profiles", "import_s", "refresh_s",
"refresh_date_rule_s", "refresh_difference_s", "refresh_unchanged_s", ...}.
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

    from segments.catalogue import recount_fields
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
                "import_s": round(import_s, 2),
                "reimport_unchanged_s": round(reimport_s, 2),
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
