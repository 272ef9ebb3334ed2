"""Settings for the worker processes that end-to-end tests start: the test settings, but tasks
really go through the broker."""

from __future__ import annotations

from .test import *  # noqa: F403
from .test import env

CELERY_TASK_ALWAYS_EAGER = False
# The test that starts the worker passes the Redis database it uses itself, already its xdist
# worker's own (tests/e2e/conftest.py): the worker inherits PYTEST_XDIST_WORKER too, and must
# not move on by the worker's index a second time.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}
CELERY_BROKER_URL = REDIS_URL
# The tests read the mail a worker sent from files (EMAIL_BACKEND=...filebased.EmailBackend).
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=None)
# The queue the test session's worker listens to, for the tasks the worker queues itself.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
