"""A run's reading, a batch ahead of its writes.

A run reads a batch from the source and converts it (Python), then stores it (our PostgreSQL).
Done one after the other, each side waits for the other: the source's server and this process
while our database stores a batch, our database while the next batch is read and converted.
``read_ahead`` reads and converts in a thread of its own while the run stores the batch before
(a database driver lets the other thread run while it waits for its server), holding at most
``depth`` batches ready, so memory stays flat.

The reading thread touches no Django database connection: a kind reads through a connection of
its own, and the conversion is plain Python. Whatever the reading raises (a ``SourceError``, a
``SourceUnchanged``) is raised again where the batches are taken. A run that stops taking them
(a failed write) stops the thread, which closes the reading (and its connection) itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

Item = TypeVar("Item")


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()
#: How often a reading thread waiting to hand over a batch looks whether it should stop.
_STOP_CHECK_SECONDS = 0.1


class _ReadAhead(Generic[Item]):
    def __init__(self, items: Iterator[Item], depth: int):
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="source-read-ahead", daemon=True)

    def _read(self) -> None:
        try:
            for item in self._items:
                if not self._hand_over(item):
                    return
            self._hand_over(_END)
        except BaseException as error:  # raised again in the run's thread
            self._hand_over(_Failed(error))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def _hand_over(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_STOP_CHECK_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def __iter__(self) -> Iterator[Item]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def read_ahead(items: Iterator[Item], depth: int = 1) -> Iterator[Iterator[Item]]:
    """``items``, produced in a thread of their own up to ``depth`` ahead of the one taken.
    Leaving the block stops the thread (and waits for it)."""
    reader = _ReadAhead(items, depth)
    reader.start()
    try:
        yield iter(reader)
    finally:
        reader.stop()
