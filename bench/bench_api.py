"""Benchmark the REST API against gunicorn on PostgreSQL.

- ``api_upsert_profiles_per_s``: profiles pushed through ``POST /api/v1/profiles/bulk/`` in
  10,000-record calls over HTTP; ``api_upsert_ratio``: that time over the CSV import of the
  same rows in the same run (issue 28's target: at most 1.3); ``api_upsert_cpu_ratio``: the
  CPU seconds of gunicorn and of the PostgreSQL backends serving it, over those of the CSV
  import (its process and its backend), read per process so that other work on the machine
  disturbs it less (target: at most 1.3); ``api_peak_rss_mb``: the workers' peak memory;
  ``api_unchanged_upsert_s`` and ``api_unchanged_upsert_cpu_s``: the same calls again, every
  record unchanged (each call then looks up 10,000 profiles among all of them).
  The calls go two at a time (``api_upsert_sequential_ratio``: one at a time), their bodies
  encoded before the clock starts.
- ``api_p95_ms``: the 95th percentile of ``GET /api/v1/runs/{id}/`` under 20 concurrent pollers,
  each polling once a second as the run page does (target: at most 50 ms on the 2-core
  machine); ``api_saturated_p95_ms`` and ``api_saturated_requests_per_s``: the same pollers
  not pausing at all, which measures how many requests the server answers, not a poller's wait.

Prints progress on standard error, then one JSON object as the last line. Uses its own
database (bench_api). ``BENCH_API_PROFILES`` (default 1,000,000) sets the size.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROFILES = int(os.environ.get("BENCH_API_PROFILES", "1000000"))
BATCH = 10_000
#: Calls in flight at once, as a pipeline pushes (the server has a worker per core and more).
IN_FLIGHT = int(os.environ.get("BENCH_API_IN_FLIGHT", "2"))
POLLERS = 20
#: Seconds between one poller's requests: the run page polls every second too.
POLL_INTERVAL = float(os.environ.get("BENCH_API_POLL_INTERVAL", "1"))
POLLS = int(os.environ.get("BENCH_API_POLLS", "30"))
DATABASE_URL = os.environ.get(
    "BENCH_API_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_api"
)
ENCRYPTION_KEY = "YmVuY2gtYXBpLWtleS1ub3QtZm9yLXByb2R1Y3Rpb24="


def main() -> None:
    from bench.bench_data import (
        _recreate_database,
        _write_csv,
        backend_pid,
        process_cpu_s,
        tune_garbage_collection,
    )

    os.environ.update(DATABASE_URL=DATABASE_URL, DJANGO_SETTINGS_MODULE="config.settings.base")
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", ENCRYPTION_KEY)
    _recreate_database(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command

    from segments.demo import demo_profiles
    from segments.importing import import_csv

    call_command("migrate", verbosity=0)
    tune_garbage_collection()  # as the Celery worker that runs CSV imports does
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "profiles.csv"
        _write_csv(path, demo_profiles(PROFILES))
        backend = backend_pid()
        cpu_before = _own_cpu_s() + process_cpu_s(backend)
        started = time.monotonic()
        with path.open("rb") as stream:
            import_csv(stream, recount_fields=False)  # as the import's task: counts follow
        csv_s = time.monotonic() - started
        csv_cpu_s = _own_cpu_s() + process_cpu_s(backend) - cpu_before
        print(f"CSV import of {PROFILES:,}: {csv_s:.1f}s, {csv_cpu_s:.1f} CPU-s", file=sys.stderr)
    _empty_profiles()

    port = _free_port()
    server = _start_gunicorn(port)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        token = _admin_token()
        bodies = _bodies(demo_profiles(PROFILES))
        _push(base, token, bodies[:1], in_flight=1)  # every worker started, one call's warm-up
        _empty_profiles()
        server_cpu = _ServerCpu(server.pid)
        api_s = _push(base, token, bodies, in_flight=IN_FLIGHT)
        api_cpu = server_cpu.spent()
        api_rss_mb = max(peak_rss_mb(pid) for pid in _children(server.pid))
        print(
            f"API upsert, {IN_FLIGHT} calls at a time: {api_s:.1f}s, CPU seconds {api_cpu};"
            f" workers' peak RSS {api_rss_mb:.0f} MB",
            file=sys.stderr,
        )
        server_cpu = _ServerCpu(server.pid)
        unchanged_s = _push(base, token, bodies, in_flight=IN_FLIGHT)
        unchanged_cpu = server_cpu.spent()
        print(
            f"API upsert of the same records again: {unchanged_s:.1f}s,"
            f" CPU seconds {unchanged_cpu}",
            file=sys.stderr,
        )
        _empty_profiles()
        sequential_s = _push(base, token, bodies, in_flight=1)
        print(f"API upsert, one call at a time: {sequential_s:.1f}s", file=sys.stderr)
        del bodies
        run_id = _a_run()
        p95_ms, _rate = _poll(base, token, run_id, interval=POLL_INTERVAL, polls=POLLS)
        print(
            f"p95 of a run's status, {POLLERS} pollers every {POLL_INTERVAL:g}s: {p95_ms:.1f} ms",
            file=sys.stderr,
        )
        saturated_ms, saturated_rate = _poll(base, token, run_id, interval=0, polls=POLLS)
        print(
            f"p95 with {POLLERS} pollers not pausing: {saturated_ms:.1f} ms"
            f" ({saturated_rate:.0f} requests/s)",
            file=sys.stderr,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        json.dumps(
            {
                "api_upsert_profiles_per_s": round(PROFILES / api_s),
                "api_upsert_ratio": round(api_s / csv_s, 2),
                "api_upsert_cpu_ratio": round(sum(api_cpu.values()) / csv_cpu_s, 2),
                "api_upsert_cpu_s": api_cpu,
                "api_csv_cpu_s": round(csv_cpu_s, 2),
                "api_unchanged_upsert_s": round(unchanged_s, 2),
                "api_unchanged_upsert_cpu_s": unchanged_cpu,
                "api_peak_rss_mb": round(api_rss_mb, 1),
                "api_upsert_sequential_ratio": round(sequential_s / csv_s, 2),
                "api_p95_ms": round(p95_ms, 1),
                "api_saturated_p95_ms": round(saturated_ms, 1),
                "api_saturated_requests_per_s": round(saturated_rate),
            }
        )
    )


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


class _ServerCpu:
    """CPU seconds of gunicorn (master and workers) and of the PostgreSQL backends serving
    the bench database other than this process's, since it was made: read per process."""

    def __init__(self, master: int):
        from bench.bench_data import backend_pid, process_cpu_s

        self._cpu = process_cpu_s
        self._mine = backend_pid()
        self._master = master
        self._server = self._server_pids()
        self._backends = self._backend_pids()
        self._before = {pid: process_cpu_s(pid) for pid in self._server | self._backends}

    def _server_pids(self) -> set[int]:
        return {self._master, *_children(self._master)}

    def _backend_pids(self) -> set[int]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND pid <> %s",
                [self._mine],
            )
            return {pid for (pid,) in cursor.fetchall()}

    def spent(self) -> dict:
        server, backends = self._server_pids(), self._backend_pids() | self._backends

        def since(pids: set[int]) -> float:
            return sum(self._cpu(pid) - self._before.get(pid, 0.0) for pid in pids)

        return {"server": round(since(server), 2), "postgres": round(since(backends), 2)}


def peak_rss_mb(pid: int) -> float:
    from bench.bench_data import peak_rss_mb as peak

    return peak(pid)


def _empty_profiles() -> None:
    """Every profile gone, at once (deleting a million one by one takes minutes)."""
    from django.db import connection

    from segments.models import Profile

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Profile._meta.db_table} CASCADE")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_gunicorn(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "bench-api-secret-key",
        "API_RATE_LIMIT": "1000000/min",
        "LOG_LEVEL": "WARNING",
        # Each backend's CPU is read from /proc: one that ends during a push (its connection
        # reopened after CONN_MAX_AGE) would take its CPU seconds with it.
        "CONN_MAX_AGE": "3600",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            "--workers=4",
            "--threads=4",
            "--timeout=300",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


def _admin_token() -> str:
    from accounts.roles import Role
    from accounts.services import user_create_or_update
    from accounts.tokens import token_create

    user, _created = user_create_or_update(username="bench", role=Role.ADMINISTRATOR)
    return token_create(user=user, name="bench")[1]


def _bodies(records) -> list[bytes]:
    """The calls' JSON bodies, encoded before the clock starts: the figure is the server's."""
    iterator = iter(records)
    bodies = []
    while batch := list(islice(iterator, BATCH)):
        records_json = [
            {
                "customer_id": record.customer_id,
                "email": record.email,
                "first_name": record.first_name,
                "last_name": record.last_name,
                "attributes": record.attributes,
            }
            for record in batch
        ]
        bodies.append(json.dumps({"records": records_json}).encode())
    return bodies


def _push(base: str, token: str, bodies: list[bytes], *, in_flight: int) -> float:
    """Seconds to send every body, ``in_flight`` calls at a time (each on its own session)."""
    import requests

    queue = iter(bodies)
    lock = threading.Lock()
    errors: list[Exception] = []

    def sender() -> None:
        session = requests.Session()
        session.headers.update(
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        )
        while True:
            with lock:
                body = next(queue, None)
            if body is None or errors:
                return
            try:
                session.post(f"{base}/profiles/bulk/", data=body, timeout=300).raise_for_status()
            except Exception as error:  # reported after the others stop
                errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(in_flight)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.monotonic() - started


def _a_run() -> int:
    from django.utils import timezone

    from connections.models import Connection
    from exports.models import Export, ExportRun

    connection = Connection.objects.create(
        kind="autopilot", display_name="bench", consent_given_at=timezone.now()
    )
    export = Export.objects.create(display_name="bench", connection=connection, list_id="l")
    run = ExportRun.objects.create(
        export=export, trigger="user", status="running", started_at=timezone.now(), sent=10
    )
    return run.pk


def _poll(base: str, token: str, run_id: int, *, interval: float, polls: int) -> tuple:
    """(p95 in ms, requests per second) of ``POLLERS`` pollers, each polling ``polls`` times,
    ``interval`` seconds apart (0: as fast as the server answers), starting out of step."""
    import requests

    timings: list[float] = []
    lock = threading.Lock()

    def poller(number: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        time.sleep(interval * number / POLLERS)
        mine = []
        next_poll = time.monotonic()
        for _ in range(polls):
            started = time.perf_counter()
            session.get(f"{base}/runs/{run_id}/", timeout=30).raise_for_status()
            mine.append((time.perf_counter() - started) * 1000)
            next_poll += interval
            time.sleep(max(0.0, next_poll - time.monotonic()))
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=poller, args=(number,)) for number in range(POLLERS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    per_second = len(timings) / (time.monotonic() - started)
    return statistics.quantiles(timings, n=100)[94], per_second


if __name__ == "__main__":
    main()
