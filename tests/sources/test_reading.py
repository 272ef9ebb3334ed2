"""A run's reading, a batch ahead of its writes, in a thread of its own (``sources.reading``)."""

from __future__ import annotations

import threading

import pytest

from sources.kinds.base import SourceError
from sources.reading import read_ahead


def test_the_items_come_in_their_order_from_another_thread():
    threads = []

    def items():
        for number in range(5):
            threads.append(threading.current_thread())
            yield number

    with read_ahead(items()) as taken:
        assert list(taken) == [0, 1, 2, 3, 4]
    assert threading.current_thread() not in threads


def test_an_error_of_the_reading_is_raised_where_the_items_are_taken_after_the_items_before():
    def items():
        yield 1
        raise SourceError("The source went away.")

    taken = []
    with pytest.raises(SourceError, match="went away"), read_ahead(items()) as batches:
        for item in batches:
            taken.append(item)
    assert taken == [1]


def test_leaving_early_stops_the_reading_and_closes_it_holding_at_most_depth_ahead():
    read, closed = [], threading.Event()

    def items():
        try:
            for number in range(1000):
                read.append(number)
                yield number
        finally:
            closed.set()

    with read_ahead(items(), depth=1) as batches:
        assert next(batches) == 0
    assert closed.is_set()
    assert len(read) <= 3  # the one taken, the one waiting, the one being handed over
