"""Benchmark storing a consent read-back (issue 26): 100,000 unsubscribed addresses read back in
pages of 1,000 (Mailchimp's page size) through ``connections.consent.read_back_execute``, each
page upserted into the consent records with its cursor in one transaction, from a backend that
holds the pages in memory, so the figure is our own cost without the service's. Then the same
read again (every record already held: nothing new), and the floor: the same pages only
normalised and de-duplicated in Python, nothing stored.

Prints progress, then one JSON object as the last line: {"consent_events",
"consent_store_s", "consent_store_again_s", "consent_store_floor_s"}. Uses a database of its
own (bench_consent), so it never touches test or demo data.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVENTS = int(os.environ.get("BENCH_CONSENT_EVENTS", "100000"))
PAGE = 1_000
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_CONSENT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_consent"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _recreate(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    server, name = BENCH_DATABASE_URL.rsplit("/", 1)
    _recreate(server, name)

    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from connections import consent
    from connections.models import Connection
    from connections.types import registry
    from connections.types.base import ConsentEvent, ConsentPage, ConsentState, DestinationList
    from segments.consent import _rows
    from segments.models import ConsentRecord

    call_command("migrate", verbosity=0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pages = [
        ConsentPage(
            [
                ConsentEvent(
                    f" Person{n}@Example.com",
                    ConsentState.UNSUBSCRIBED,
                    start + timedelta(seconds=n),
                    "audience1",
                    "Too many emails",
                )
                for n in range(first, min(first + PAGE, EVENTS))
            ],
            cursor=str(first + PAGE) if first + PAGE < EVENTS else None,
        )
        for first in range(0, EVENTS, PAGE)
    ]

    base = registry.backend_class("mailchimp")

    class InMemory(base):  # type: ignore[misc, valid-type]
        reads_consent = True

        def list_destinations(self):
            return [DestinationList("audience1", "Newsletter")]

        def read_consent(self, lists, *, since, cursor=None):
            return pages[0 if cursor is None else int(cursor) // PAGE]

    registry.backend_class = lambda kind: InMemory  # type: ignore[assignment]
    target = Connection.objects.create(
        kind="mailchimp", display_name="Bench", consent_given_at=timezone.now()
    )

    started = time.monotonic()
    for page in pages:
        _rows(page.events)
    floor = time.monotonic() - started
    log(f"floor (normalise and de-duplicate only): {floor:.2f}s")

    started = time.monotonic()
    state = consent.read_back_execute(connection_id=target.pk)
    first = time.monotonic() - started
    assert state.new_count == EVENTS == ConsentRecord.objects.count(), state.new_count
    log(f"first read: {first:.2f}s, {state.new_count:,} new records")

    started = time.monotonic()
    state = consent.read_back_execute(connection_id=target.pk)
    again = time.monotonic() - started
    assert state.new_count == 0 and ConsentRecord.objects.count() == EVENTS
    log(f"same read again: {again:.2f}s, nothing new")

    print(
        json.dumps(
            {
                "consent_events": EVENTS,
                "consent_store_s": round(first, 2),
                "consent_store_again_s": round(again, 2),
                "consent_store_floor_s": round(floor, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
