"""Calls run one after the other, in the order given, on a thread of their own with a database
connection of their own: the caller goes on with its own work (reading the next pages of a
service) while the calls use the database (storing the pages read before).

A call's error is kept and raised to the caller at its next ``submit`` or at ``finish``; the
calls after it are not run. Inline (``background=False``) each call runs at once in the
caller's thread, on the caller's connection and in its transaction, with the same outcome.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from django.db import connection as db_connection

from core import logs

_STOP = object()


class InOrder:
    def __init__(self, *, background: bool, name: str, max_waiting: int):
        self.background = background
        self._error: BaseException | None = None
        self._abandoned = False
        self._calls: queue.Queue[object] = queue.Queue(maxsize=max(1, max_waiting))
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._run, args=(logs.current(),), name=name, daemon=True
            )
            self._thread.start()

    def submit(self, call: Callable[[], object]) -> None:
        """Run ``call`` after the calls submitted before it; waits while ``max_waiting`` calls
        wait already. Raises the error of an earlier call (and runs nothing more)."""
        self._raise_any_error()
        if self._thread is None:
            call()
            return
        self._calls.put(call)

    def finish(self) -> None:
        """Wait for every call submitted; raises the first call's error, if any. The thread
        ends (a later ``submit`` or ``finish`` does nothing more)."""
        self._stop()
        self._raise_any_error()

    def abandon(self) -> None:
        """Drop the calls not started, wait for the running one to end, and end the thread;
        errors are dropped (the caller is raising its own)."""
        self._abandoned = True
        while True:
            try:
                self._calls.get_nowait()
            except queue.Empty:
                break
        self._stop()
        self._error = None

    def _stop(self) -> None:
        if self._thread is not None:
            self._calls.put(_STOP)
            self._thread.join()
            self._thread = None

    def _raise_any_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._abandoned = True  # nothing after a failed call runs
            raise error

    def _run(self, log_context: dict[str, object]) -> None:
        logs.adopt(log_context)
        try:
            while True:
                call = self._calls.get()
                if call is _STOP:
                    return
                if self._error is None and not self._abandoned:
                    try:
                        call()  # type: ignore[operator]
                    except BaseException as error:  # raised to the caller, in its thread
                        self._error = error
        finally:
            db_connection.close()
