"""End to end: the servers a run depends on fail under it, and nobody is lost.

Redis (the broker, the cache and the shared limits) is one of the test's own, restarted under a
running export; PostgreSQL loses a run's unlogged recipients the way a crash does. Each list
is compared address by address afterwards, and the worker must still be up and working.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from exports import runs, services
from exports.models import ExportRun
from exports.recipients import RecipientTable
from fakes.testing import running_fake
from segments.services import segment_refresh
from tests.e2e.conftest import STALLED_AFTER_SECONDS, wait_until, worker_process
from tests.e2e.test_export_runs import _connection, autopilot_list_id, finished, make_export
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
Status = ExportRun.Status
MAILCHIMP_KEY = "demo0mailchimp0key-us21"
PROFILES = 2000
EVERYONE = {f"p{number}@example.com" for number in range(PROFILES)}


class OwnRedis:
    """A Redis server of the test's own, which it can stop and start again (it keeps nothing
    on disk, so a restart empties it: the queue, the limits, the leases)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, message="the test's Redis to start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mc_fake(settings, monkeypatch):
    with running_fake("mailchimp") as fake:
        settings.MAILCHIMP_API_URL = fake.base_url
        monkeypatch.setenv("MAILCHIMP_API_URL", fake.base_url)
        yield fake


@pytest.fixture
def worker_on_own_redis(e2e_settings, tmp_path, transactional_db, own_redis, monkeypatch):
    """A worker whose broker, cache and shared limits are ``own_redis``; runs requested in the
    test are queued there."""
    with worker_process(e2e_settings, tmp_path, own_redis.url) as process:
        sender = Celery("fault-tests", broker=own_redis.url, set_as_current=False)
        monkeypatch.setattr(
            "exports.services._enqueue",
            lambda run_id: sender.send_task(
                "exports.tasks.run_export", args=[run_id], queue=process.queue
            ),
        )
        yield process


@pytest.fixture
def everyone_segment():
    for number in range(PROFILES):
        ProfileFactory(email=f"p{number}@example.com")
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "email", "operator": "is_not_empty"}]}
    )
    segment_refresh(segment_id=segment.pk)
    return segment


def _restart_redis_while_running(
    own_redis: OwnRedis, run: ExportRun, down_seconds: float, sent_before: int = PROFILES // 5
):
    """Stop Redis once ``sent_before`` profiles are sent (and the run is sending); start it
    again ``down_seconds`` later. Return the run's ``waiting_for`` values seen meanwhile."""

    def sending() -> bool:
        now = ExportRun.objects.get(pk=run.pk)
        return now.recipients_ready and now.sent >= sent_before

    wait_until(sending, message="the run to send")
    own_redis.stop()
    seen = set()
    deadline = time.monotonic() + down_seconds
    while time.monotonic() < deadline:
        seen.add(ExportRun.objects.get(pk=run.pk).waiting_for)
        time.sleep(0.2)
    own_redis.start()
    return seen


def _worker_still_serves(worker, run: ExportRun) -> None:
    """The worker is up and takes tasks from the restarted broker: a second run finishes."""
    assert worker.process.poll() is None, worker.log()[-3000:]
    again = finished(services.run_request(export=run.export), timeout=90)
    assert again.status == Status.SUCCEEDED, worker.log()[-3000:]
    assert "Unrecoverable error" not in worker.log()


def test_a_redis_restart_under_an_autopilot_run_loses_nobody_and_the_worker_stays_up(
    worker_on_own_redis, own_redis, autopilot_fake, everyone_segment, alice
):
    """Autopilot's requests go through the rate limiter that lives in Redis."""
    autopilot_fake.configure(latency_ms=150)
    connection_ = _connection("autopilot", {"api_key": "demo-autopilot-key"}, alice)
    list_id = autopilot_list_id(autopilot_fake)
    run = services.run_request(
        export=make_export(connection_, list_id, everyone_segment, alice), user=alice
    )

    seen = _restart_redis_while_running(own_redis, run, down_seconds=5)
    run = finished(run, timeout=120)

    assert ExportRun.WaitingFor.REDIS in seen  # the progress said why it waited
    assert (run.status, run.sent, run.failed) == (Status.SUCCEEDED, PROFILES, 0), (
        worker_on_own_redis.log()[-3000:]
    )
    members = autopilot_fake.state(list=list_id)["accounts"][0]["lists"][list_id]["members"]
    assert set(members) == EVERYONE
    assert run.waiting_for == ExportRun.WaitingFor.NOTHING
    _worker_still_serves(worker_on_own_redis, run)


def test_a_redis_restart_under_a_mailchimp_run_loses_nobody_and_the_worker_stays_up(
    mc_fake, worker_on_own_redis, own_redis, everyone_segment, alice
):
    """Mailchimp's requests take one of the account's connection slots, kept in Redis."""
    mc_fake.configure(latency_ms=1500)
    connection_ = _connection("mailchimp", {"api_key": MAILCHIMP_KEY}, alice)
    audience = next(iter(mc_fake.state(summary=True)["accounts"][0]["audiences"]))
    run = services.run_request(
        export=make_export(connection_, audience, everyone_segment, alice), user=alice
    )

    # Batches of 500: Redis goes as the first ones are sent, so that the others wait for it.
    seen = _restart_redis_while_running(own_redis, run, down_seconds=5, sent_before=0)
    run = finished(run, timeout=120)

    assert ExportRun.WaitingFor.REDIS in seen
    assert (run.status, run.sent, run.failed) == (Status.SUCCEEDED, PROFILES, 0), (
        worker_on_own_redis.log()[-3000:]
    )
    members = mc_fake.state(list=audience)["accounts"][0]["audiences"][audience]["members"]
    assert {email for email, member in members.items() if member["status"] == "subscribed"} == (
        EVERYONE
    )
    _worker_still_serves(worker_on_own_redis, run)


def test_recipients_a_postgresql_crash_emptied_are_computed_again_and_nobody_is_lost(
    worker, autopilot_fake, everyone_segment, alice
):
    autopilot_fake.configure(latency_ms=150)
    connection_ = _connection("autopilot", {"api_key": "demo-autopilot-key"}, alice)
    list_id = autopilot_list_id(autopilot_fake)
    run = services.run_request(
        export=make_export(connection_, list_id, everyone_segment, alice), user=alice
    )
    wait_until(
        lambda: ExportRun.objects.get(pk=run.pk).sent >= PROFILES * 2 // 5, message="40% sent"
    )

    _crash_as_postgresql_does(run)
    time.sleep(STALLED_AFTER_SECONDS + 0.5)
    services.runs_resume_stalled()  # what beat's sweeper does every minute
    run = finished(run, timeout=120)

    assert (run.status, run.sent, run.failed, runs.unaccounted(run)) == (
        Status.SUCCEEDED,
        PROFILES,
        0,
        0,
    ), worker.log()[-3000:]
    members = autopilot_fake.state(list=list_id)["accounts"][0]["lists"][list_id]["members"]
    assert set(members) == EVERYONE
    assert "its recipients were lost; computing them again" in worker.log()


def _crash_as_postgresql_does(run: ExportRun) -> None:
    """What a crash does to the run: every other connection is cut, and the unlogged members'
    table comes back empty (PostgreSQL resets unlogged tables after a crash)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        cursor.execute(f"TRUNCATE {RecipientTable(run).name}")
