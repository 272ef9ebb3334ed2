"""Settings for the worker processes that end-to-end tests start: the test settings, but tasks
really go through the broker."""

from __future__ import annotations

from .test import *  # noqa: F403
from .test import env

CELERY_TASK_ALWAYS_EAGER = False
# The tests read the mail a worker sent from files (EMAIL_BACKEND=...filebased.EmailBackend).
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=None)
# The queue the test session's worker listens to, for the tasks the worker queues itself.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
