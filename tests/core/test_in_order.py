"""Calls run in order behind the caller, on a thread and a database connection of their own."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from core.in_order import InOrder


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_inline_each_call_runs_at_once_in_the_callers_thread():
    ran: list[str] = []
    calls = InOrder(background=False, name="test", max_waiting=2)
    calls.submit(lambda: ran.append(threading.current_thread().name))
    assert ran == [threading.current_thread().name]
    calls.finish()


def test_in_the_background_the_calls_run_in_order_on_a_thread_of_their_own():
    ran: list[tuple[int, str]] = []
    calls = InOrder(background=True, name="behind", max_waiting=2)
    for number in range(10):
        calls.submit(lambda number=number: ran.append((number, threading.current_thread().name)))
    calls.finish()
    assert ran == [(number, "behind") for number in range(10)]


@pytest.mark.django_db(transaction=True)
def test_in_the_background_the_calls_use_a_database_connection_of_their_own_closed_at_the_end():
    pids: list[int] = []
    calls = InOrder(background=True, name="behind", max_waiting=2)
    calls.submit(lambda: pids.append(backend_pid()))
    calls.finish()
    assert pids and pids[0] != backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pids[0]])
        assert cursor.fetchone()[0] == 0


def test_a_failed_call_is_raised_at_the_next_submit_and_the_calls_after_it_do_not_run():
    ran: list[int] = []
    failed = threading.Event()

    def fail() -> None:
        failed.set()
        raise ValueError("the store failed")

    calls = InOrder(background=True, name="behind", max_waiting=5)
    calls.submit(fail)
    calls.submit(lambda: ran.append(1))  # queued before the failure is known, or raises it
    failed.wait(5)
    with pytest.raises(ValueError, match="the store failed"):
        for _attempt in range(1000):  # until the thread has set the error down
            calls.submit(lambda: ran.append(2))
    calls.abandon()
    assert ran == []


def test_finish_waits_for_every_call_and_raises_the_first_error():
    ran: list[int] = []
    calls = InOrder(background=True, name="behind", max_waiting=5)
    calls.submit(lambda: ran.append(1))
    calls.submit(lambda: 1 / 0)
    calls.submit(lambda: ran.append(3))
    with pytest.raises(ZeroDivisionError):
        calls.finish()
    assert ran == [1]
    calls.abandon()  # after finish: nothing more to do


def test_abandon_drops_the_calls_not_started_and_waits_for_the_running_one():
    ran: list[int] = []
    running, go_on = threading.Event(), threading.Event()

    def slow() -> None:
        running.set()
        go_on.wait(5)
        ran.append(1)

    calls = InOrder(background=True, name="behind", max_waiting=5)
    calls.submit(slow)
    calls.submit(lambda: ran.append(2))
    running.wait(5)
    threading.Timer(0.05, go_on.set).start()
    calls.abandon()
    assert ran == [1]
