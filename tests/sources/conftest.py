"""Fixtures shared by the source tests."""

from __future__ import annotations

import pytest

from sources.kinds import registry
from sources.kinds.base import SourceError


@pytest.fixture
def reading(monkeypatch, settings):
    """Make the next readings die after ``dies_after`` batches (raising ``dies_with``), and
    count the rows each reading gave."""
    settings.SOURCE_BATCH_ROWS = 10
    state = {"dies_after": None, "dies_with": SourceError("The source went away."), "rows": []}

    original = registry.kind_class

    def kind_class(kind):
        class Counted(original(kind)):
            def batches(self, read, batch_size):
                state["rows"].append(0)
                for number, batch in enumerate(super().batches(read, batch_size), start=1):
                    state["rows"][-1] += len(batch[1])
                    yield batch
                    if number == state["dies_after"]:
                        raise state["dies_with"]

        return Counted

    monkeypatch.setattr(registry, "kind_class", kind_class)
    return state
