"""The outcome sentence under a finished run's progress details, one for each way it ended."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string

from exports.models import ExportRun

Status = ExportRun.Status

DONE = "Done: "
WARNINGS = "refused by the service and"
CANCELLED = "The run was cancelled."
OUTCOMES = (DONE, WARNINGS, CANCELLED)


def outcome_of(status: str) -> list[str]:
    run = ExportRun(status=status, trigger=ExportRun.Trigger.USER, failed=2, sent=3)
    html = render_to_string(
        "exports/_progress.html", {"progress": SimpleNamespace(run=run, percent=100)}
    )
    return [sentence for sentence in OUTCOMES if sentence in html]


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (Status.SUCCEEDED, [DONE]),
        (Status.COMPLETED_WITH_WARNINGS, [WARNINGS]),
        (Status.CANCELLED, [CANCELLED]),
        (Status.FAILED, []),
        (Status.SKIPPED, []),
        (Status.RUNNING, []),
    ],
)
def test_a_run_says_how_it_ended_once_it_ended(status, said):
    assert outcome_of(status) == said
