"""A worker proves it is alive from its own process: /readyz never reports it down because
beat is."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from ops import heartbeat, readiness
from tests.e2e.conftest import wait_until, worker_process

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_worker_is_ready_while_beat_is_down(e2e_settings, tmp_path, settings):
    cache.delete_many([heartbeat.BEAT_KEY, heartbeat.WORKER_KEY])

    with worker_process(e2e_settings, tmp_path, settings.REDIS_URL):
        wait_until(
            lambda: heartbeat.seconds_since(heartbeat.WORKER_KEY) is not None,
            timeout=60,
            message="the worker's mark",
        )
        checks = readiness.readiness()

    assert checks["worker"].ok
    assert (checks["beat"].ok, checks["beat"].detail) == (False, "never seen")
