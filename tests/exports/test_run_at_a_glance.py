"""A run's results at a glance: a retry says so in the history, and the progress bar shows
refusals (amber) and a failed run (red)."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string

from exports.models import ExportRun
from exports.selectors import run_progress
from exports.templatetags.exports_tags import started_by

pytestmark = pytest.mark.django_db
Status = ExportRun.Status


def a_run(export, alice, **fields) -> ExportRun:
    return ExportRun.objects.create(
        export=export, trigger=ExportRun.Trigger.USER, triggered_by=alice, **fields
    )


def test_a_retry_is_marked_as_one_where_the_history_says_who_started_it(
    make_export, everyone, alice
):
    export = make_export(everyone)
    first = a_run(export, alice, status=Status.COMPLETED_WITH_WARNINGS, failed=2)
    retry = a_run(export, alice, status=Status.SUCCEEDED, retry_of=first)
    assert started_by(first) == "alice"
    assert started_by(retry) == f"alice (retry of run {first.pk})"


@pytest.mark.parametrize(
    ("fields", "look"),
    [
        ({"status": Status.SUCCEEDED}, 'class="progress"'),
        ({"status": Status.COMPLETED_WITH_WARNINGS, "failed": 3}, 'class="progress with-failures"'),
        ({"status": Status.RUNNING, "failed": 1}, 'class="progress with-failures"'),
        ({"status": Status.FAILED}, 'class="progress failed"'),
    ],
)
def test_the_progress_bar_shows_refusals_and_failure(make_export, everyone, alice, fields, look):
    run = a_run(make_export(everyone), alice, **fields)
    html = render_to_string("exports/_progress.html", {"progress": run_progress(run)})
    assert look in html
