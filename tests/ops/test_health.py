"""/healthz and /readyz: JSON, no login, nothing secret, and each check can fail on its own."""

from __future__ import annotations

import time

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache

from ops import heartbeat, readiness
from ops.tasks import heartbeat_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_heartbeats():
    cache.delete_many([heartbeat.BEAT_KEY, heartbeat.WORKER_KEY])


def alive():
    heartbeat.record(heartbeat.BEAT_KEY)
    heartbeat.record(heartbeat.WORKER_KEY)


def test_healthz_answers_without_a_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_ready_when_everything_answers_and_beat_and_a_worker_were_seen(client):
    alive()
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "cache", "worker", "beat"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_is_unavailable_until_a_worker_and_beat_were_seen(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["worker"] == {"ok": False, "detail": "never seen"}
    assert checks["beat"] == {"ok": False, "detail": "never seen"}
    assert checks["database"]["ok"] and checks["broker"]["ok"] and checks["cache"]["ok"]


def test_a_heartbeat_older_than_two_minutes_is_not_alive(client, monkeypatch):
    alive()
    now = time.time()
    monkeypatch.setattr("ops.heartbeat.time.time", lambda: now + 121)
    checks = client.get("/readyz").json()["checks"]
    assert checks["worker"] == {"ok": False, "detail": "last seen 121 seconds ago"}


def test_the_heartbeat_task_marks_the_worker_and_publishing_it_marks_beat(monkeypatch):
    monkeypatch.setattr("ops.heartbeat.time.time", lambda: 1_800_000_000.0)  # the clock stands
    heartbeat_task.delay()  # eager in the unit tests: runs here, as a worker would
    assert heartbeat.seconds_since(heartbeat.WORKER_KEY) == 0
    assert heartbeat.seconds_since(heartbeat.BEAT_KEY) is None
    before_task_publish.send(sender="ops.tasks.heartbeat", body=(), headers={})
    assert heartbeat.seconds_since(heartbeat.BEAT_KEY) == 0


def test_publishing_another_task_does_not_mark_beat():
    before_task_publish.send(sender="exports.tasks.resume_stalled_runs", body=(), headers={})
    assert heartbeat.seconds_since(heartbeat.BEAT_KEY) is None


def test_beat_sends_the_heartbeat_often_enough(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["ops-heartbeat"]
    assert entry["task"] == "ops.tasks.heartbeat"
    assert entry["schedule"] * 2 < readiness.MAX_HEARTBEAT_AGE_SECONDS


def test_an_unreachable_broker_or_database_makes_readyz_fail_without_saying_where(
    client, monkeypatch, settings
):
    alive()
    secret_url = "redis://:broker-password@10.1.2.3:6390/0"

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError(f"Error 111 connecting to {secret_url}")

    monkeypatch.setattr("ops.readiness.celery_app.connection_for_read", refuse)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"] == {"ok": False, "detail": "unreachable (ConnectionRefusedError)"}
    assert "broker-password" not in response.content.decode()
    assert "10.1.2.3" not in response.content.decode()

    class BrokenCursor:
        def __enter__(self):
            raise OSError(f"could not connect to {settings.DATABASES['default']}")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr("ops.readiness.connection.cursor", lambda: BrokenCursor())
    checks = client.get("/readyz").json()["checks"]
    assert checks["database"] == {"ok": False, "detail": "unreachable (OSError)"}


def test_an_unreachable_cache_makes_readyz_fail(client, monkeypatch):
    alive()

    def refuse(*args, **kwargs):
        raise ConnectionError("no cache")

    monkeypatch.setattr("ops.readiness.cache.set", refuse)
    monkeypatch.setattr("ops.heartbeat.cache.get", refuse)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["cache"] == {"ok": False, "detail": "unreachable (ConnectionError)"}
    assert checks["worker"]["ok"] is False


def test_health_endpoints_take_only_get(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
