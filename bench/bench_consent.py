"""Benchmark the consent read-back (issue 26).

- consent_readback_s: 100,000 members unsubscribed in the Mailchimp fake (its own process),
  read back through ``connections.consent.read_back_execute`` with the real Mailchimp backend
  and stored as consent records; consent_readback_floor_s: plain paging of the same endpoint
  with the same parameters (1,000 a page, JSON decoded), nothing stored; consent_readback_ratio
  (target <= 1.3). consent_readback_cpu_s and consent_readback_floor_cpu_s: the CPU seconds
  each cost this process, the fake and (the read-back) its PostgreSQL backends (the one it
  reads with and the one it stores with), which a busy machine disturbs less than the
  seconds; consent_readback_cpu_ratio.
- consent_store_s: the same number of events from a backend that holds the pages in memory,
  so our own cost without the service's; consent_store_again_s: the same read again (every
  record already held); consent_store_floor_s: the pages only normalised and de-duplicated.

Prints progress, then one JSON object as the last line. Uses a database of its own
(``BENCH_CONSENT_DATABASE_URL``, default bench_consent, dropped and made again), so it never
touches test or demo data; ``BENCH_CONSENT_EVENTS`` sets the size.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVENTS = int(os.environ.get("BENCH_CONSENT_EVENTS", "100000"))
PAGE = 1_000
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_CONSENT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_consent"
)
MAILCHIMP_KEY = "bench0consent0key-us21"
#: What the Mailchimp backend asks for (``connections.types.mailchimp.client``).
MEMBER_FIELDS = (
    "members.email_address,members.status,members.last_changed,members.unsubscribe_reason,"
    "total_items"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _recreate(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    port = free_port()
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ["MAILCHIMP_API_URL"] = f"http://127.0.0.1:{port}/{{dc}}/3.0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    server, name = BENCH_DATABASE_URL.rsplit("/", 1)
    _recreate(server, name)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    fake = subprocess.Popen(
        [
            *(sys.executable, "-m", "fakes", "mailchimp", "--port", str(port), "--quiet"),
            *("--api-key", MAILCHIMP_KEY, "--no-demo"),
        ],
        cwd=ROOT,
    )
    try:
        figures = _readback_from_the_fake(port, fake.pid)
    finally:
        fake.terminate()
        fake.wait()
    figures.update(_store_only())
    print(json.dumps(figures))


def _cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds of this process, or of process ``pid`` (another, from /proc)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@contextmanager
def _storing_backends_cpu(consent) -> Iterator[dict[int, float]]:
    """The CPU seconds of each PostgreSQL backend that stores the read's pages (the read stores
    on a connection of its own, closed when the read ends), by pid: noted after each store,
    the last store being its last work."""
    seen: dict[int, float] = {}
    real_store = consent._PageStore.store

    def store_noting_cpu(self, *, cursor):
        real_store(self, cursor=cursor)
        pid = _backend_pid()
        seen[pid] = _cpu_seconds(pid)

    consent._PageStore.store = store_noting_cpu
    try:
        yield seen
    finally:
        consent._PageStore.store = real_store


def _readback_from_the_fake(port: int, fake_pid: int) -> dict:
    import requests
    from django.utils import timezone

    from connections import consent
    from connections.models import Connection
    from connections.services import credentials_encrypt
    from fakes.testing import FakeControl
    from segments.models import ConsentRecord

    control = FakeControl(f"http://127.0.0.1:{port}", "/{dc}/3.0")
    for _attempt in range(100):
        try:
            control.state(summary=True)
            break
        except Exception:
            time.sleep(0.1)
    seeded = control.seed(
        accounts=[{"api_keys": [MAILCHIMP_KEY], "dc": "us21", "audiences": [{"name": "Bench"}]}]
    )
    audience = seeded["accounts"][0]["audiences"][0]["id"]
    for first in range(0, EVENTS, 10_000):
        emails = [f"person{n}@example.com" for n in range(first, min(first + 10_000, EVENTS))]
        control.consent(emails, "unsubscribed", list_id=audience)
    log(f"Mailchimp fake: {EVENTS:,} unsubscribed members")

    base_url = control.base_url.format(dc="us21")
    cpu_before = _cpu_seconds() + _cpu_seconds(fake_pid)
    started = time.monotonic()
    with requests.Session() as session:
        session.auth = ("anystring", MAILCHIMP_KEY)
        offset, read = 0, 0
        while True:
            reply = session.get(
                f"{base_url}/lists/{audience}/members",
                params={
                    "status": "unsubscribed",
                    "sort_field": "last_changed",
                    "sort_dir": "ASC",
                    "count": 1000,
                    "offset": offset,
                    "fields": MEMBER_FIELDS,
                },
                timeout=30,
            )
            reply.raise_for_status()
            body = reply.json()
            read += len(body["members"])
            offset += 1000
            if offset >= body["total_items"]:
                break
    floor = time.monotonic() - started
    floor_cpu = _cpu_seconds() + _cpu_seconds(fake_pid) - cpu_before
    assert read == EVENTS, read
    log(f"floor (plain paging): {floor:.2f}s, {floor_cpu:.2f} CPU-s")

    target = Connection.objects.create(
        kind="mailchimp",
        display_name="Bench Mailchimp",
        consent_given_at=timezone.now(),
        encrypted_credentials=credentials_encrypt({"api_key": MAILCHIMP_KEY}),
    )
    backend_pid = _backend_pid()
    with _storing_backends_cpu(consent) as storing:
        before = [_cpu_seconds(), _cpu_seconds(fake_pid), _cpu_seconds(backend_pid)]
        started = time.monotonic()
        state = consent.read_back_execute(connection_id=target.pk)
        readback = time.monotonic() - started
    spent = [
        after - earlier
        for after, earlier in zip(
            (_cpu_seconds(), _cpu_seconds(fake_pid), _cpu_seconds(backend_pid)), before, strict=True
        )
    ]
    spent[2] += sum(cpu for pid, cpu in storing.items() if pid != backend_pid)
    readback_cpu = sum(spent)
    held = ConsentRecord.objects.filter(connection=target).count()
    assert held == EVENTS == state.new_count, (held, state.new_count)
    log(
        f"read-back: {readback:.2f}s, {readback_cpu:.2f} CPU-s (this process, the fake, "
        f"PostgreSQL: {', '.join(f'{part:.2f}' for part in spent)}), {held:,} records"
    )
    ConsentRecord.objects.all().delete()
    return {
        "consent_readback_events": EVENTS,
        "consent_readback_s": round(readback, 2),
        "consent_readback_floor_s": round(floor, 2),
        "consent_readback_ratio": round(readback / floor, 3),
        "consent_readback_cpu_s": round(readback_cpu, 2),
        "consent_readback_floor_cpu_s": round(floor_cpu, 2),
        "consent_readback_cpu_ratio": round(readback_cpu / floor_cpu, 3),
    }


def _store_only() -> dict:
    from django.utils import timezone

    from connections import consent
    from connections.models import Connection
    from connections.types import registry
    from connections.types.base import ConsentEvent, ConsentPage, ConsentState, DestinationList
    from segments.consent import _rows
    from segments.models import ConsentRecord

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

    real_backend_class = registry.backend_class
    base = real_backend_class("mailchimp")

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

    registry.backend_class = real_backend_class  # type: ignore[method-assign]
    return {
        "consent_store_s": round(first, 2),
        "consent_store_again_s": round(again, 2),
        "consent_store_floor_s": round(floor, 2),
    }


if __name__ == "__main__":
    main()
