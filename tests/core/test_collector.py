"""The cycle collector's pause: one per process, over until the last request is done."""

from __future__ import annotations

import gc

import pytest

from core.collector import cycle_collector_paused


@pytest.fixture(autouse=True)
def collector_enabled():
    gc.enable()
    yield
    gc.enable()


def test_the_collector_runs_again_when_the_last_of_two_overlapping_pauses_ends():
    first, second = cycle_collector_paused(), cycle_collector_paused()

    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    paused_while_the_second_runs = not gc.isenabled()
    second.__exit__(None, None, None)

    assert paused_while_the_second_runs
    assert gc.isenabled()


def test_a_pause_that_fails_still_ends():
    with pytest.raises(ValueError), cycle_collector_paused():
        assert not gc.isenabled()
        raise ValueError

    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()

    with cycle_collector_paused():
        pass

    assert not gc.isenabled()
