"""Settings for the worker processes that end-to-end tests start: the test settings, but tasks
really go through the broker."""

from __future__ import annotations

from .test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
