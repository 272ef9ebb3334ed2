"""`make test` runs the suite in pytest-xdist workers (gw0, gw1...): each worker has a Redis
database of its own, as it has a PostgreSQL test database of its own (pytest-django's _gw0
suffix), and the Celery workers the end-to-end tests start use the test's own."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

from config.settings.test import worker_redis_url


def test_each_xdist_worker_moves_on_from_the_given_redis_database_by_its_index():
    assert worker_redis_url("redis://127.0.0.1:6379/6", "gw0") == "redis://127.0.0.1:6379/6"
    assert worker_redis_url("redis://127.0.0.1:6379/6", "gw2") == "redis://127.0.0.1:6379/8"
    assert worker_redis_url("redis://:pw@redis:6379", "gw1") == "redis://:pw@redis:6379/1"


def test_without_xdist_the_given_redis_database_is_used_as_it_is():
    assert worker_redis_url("redis://127.0.0.1:6379/6", "") == "redis://127.0.0.1:6379/6"


def test_this_worker_keeps_its_cache_and_broker_in_its_own_redis_database():
    expected = worker_redis_url(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        os.environ.get("PYTEST_XDIST_WORKER", ""),
    )
    used = (settings.REDIS_URL, settings.CACHES["default"]["LOCATION"], settings.CELERY_BROKER_URL)
    assert used == (expected, expected, expected)


def test_a_celery_worker_started_by_a_test_takes_the_tests_redis_database_as_it_is():
    """It inherits PYTEST_XDIST_WORKER: the database must not move on a second time."""
    script = (
        "from config.settings import e2e;"
        "print(e2e.REDIS_URL, e2e.CACHES['default']['LOCATION'], e2e.CELERY_BROKER_URL)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "PYTEST_XDIST_WORKER": "gw1",
            "REDIS_URL": "redis://127.0.0.1:6379/7",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["redis://127.0.0.1:6379/7"] * 3
