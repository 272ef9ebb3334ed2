"""scripts/healthcheck.py, as docker-compose.yml runs it, against a running server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from ops import heartbeat

pytestmark = pytest.mark.django_db(transaction=True)
SCRIPT = Path(settings.BASE_DIR) / "scripts" / "healthcheck.py"


def healthcheck(*arguments: str) -> int:
    environment = {**os.environ, "ALLOWED_HOSTS": "localhost"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], env=environment, timeout=30, check=False
    ).returncode


def test_it_passes_on_healthz_and_on_one_ok_check_of_readyz(live_server):
    from django.core.cache import cache

    cache.delete_many([heartbeat.BEAT_KEY, heartbeat.WORKER_KEY])
    assert healthcheck(f"{live_server.url}/healthz") == 0
    assert healthcheck(f"{live_server.url}/readyz") == 1
    assert healthcheck(f"{live_server.url}/readyz", "--check", "database") == 0
    assert healthcheck(f"{live_server.url}/readyz", "--check", "worker") == 1
    heartbeat.record(heartbeat.WORKER_KEY)
    assert healthcheck(f"{live_server.url}/readyz", "--check", "worker") == 0
    assert healthcheck(f"{live_server.url}/readyz", "--check", "no-such-check") == 1


def test_it_fails_when_nothing_answers():
    assert healthcheck("http://127.0.0.1:9/healthz", "--timeout", "2") == 1
