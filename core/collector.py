"""Pausing Python's cycle collector while a request builds and reads a large body.

A bulk upsert makes some 10,000 objects and lists (the parsed records, their columns, their
results) that live until the call ends. Each automatic collection during the call goes through
all of them again, and as they pile up the full collections come more often: a third of the
call's CPU. Paused, the collector runs once after the call over what is left. What the call
made must then be freed without it: nothing large of it may be held in a reference cycle.

The collector is one per process; a pause lasts until the last request that paused it is done.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_enabled_before = True


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    global _pauses, _enabled_before
    with _lock:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()
