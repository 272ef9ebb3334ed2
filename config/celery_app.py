"""The Celery application: configured from Django settings under the ``CELERY_`` namespace."""

from __future__ import annotations

import gc
import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("audience_relay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


#: Allocations between two collections of the youngest generation (Python's default is 700).
GC_YOUNG_THRESHOLD = 10_000


@worker_ready.connect
@worker_process_init.connect
def tune_garbage_collection(**_signal) -> None:
    """An export run makes millions of short-lived tuples and dicts. With the default
    thresholds the collector ran so often, and through the whole heap of a worker that has
    loaded Django, that it was a large share of the CPU of reading, building and sending a
    batch.

    What exists once the worker is ready (modules, settings) lives as long as the worker, so it
    is frozen out of collections, and the youngest generation is collected less often.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
