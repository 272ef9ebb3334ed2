"""Settings for the test suite: PostgreSQL and Redis, as in production."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from .base import *  # noqa: F403
from .base import env


def worker_redis_url(url: str, worker: str) -> str:
    """The Redis database of one pytest-xdist worker (``gw0``, ``gw1``...): the number in
    ``url`` plus the worker's index, so that no worker reads or empties another's keys, locks,
    limits or queues. Outside xdist (``worker`` empty) ``url`` is taken as it is."""
    if not worker:
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return parts._replace(path=f"/{base + int(worker.removeprefix('gw'))}").geturl()


DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
FIELD_ENCRYPTION_KEY = ["dGVzdC1rZXktZm9yLXRoZS10ZXN0LXN1aXRlLW9ubHk="]
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/test")}
REDIS_URL = worker_redis_url(
    env("REDIS_URL", default="redis://127.0.0.1:6379/0"), os.environ.get("PYTEST_XDIST_WORKER", "")
)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}
CELERY_BROKER_URL = REDIS_URL
# Unit tests run tasks in-process; the end-to-end tests start a real worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
# Login throttling is on only in the test that proves it (tests/accounts/test_throttling.py).
AXES_ENABLED = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
# File sources may be downloaded over plain http:// from the tests' local server only.
SOURCE_FILE_PLAIN_HTTP_HOSTS = ("127.0.0.1", "localhost")
