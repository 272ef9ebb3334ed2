"""``manage.py run_export --wait``: it follows the run to its end and fails unless it delivered."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from exports import engine
from exports.models import ExportRun
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def a_worker_runs_it_while_the_command_waits(monkeypatch):
    """The test's transaction never commits, so nothing is queued: the wait runs the run."""

    def run_the_queued_run(seconds):
        for run in ExportRun.objects.filter(status__in=ExportRun.ACTIVE_STATUSES):
            engine.execute(run.pk)

    monkeypatch.setattr("exports.management.commands.run_export.time.sleep", run_the_queued_run)


def test_a_run_that_delivered_ends_the_command_quietly(backend, make_export, everyone):
    ProfileFactory(email="p@example.com")
    export = make_export(everyone)
    out = io.StringIO()
    call_command("run_export", str(export.pk), wait=True, stdout=out)
    assert ExportRun.objects.get(export=export).status == ExportRun.Status.SUCCEEDED
    assert "Successful: 100%" in out.getvalue()


def test_a_run_that_was_skipped_fails_the_command(backend, make_export):
    export = make_export()
    with pytest.raises(CommandError, match="ended: Skipped"):
        call_command(
            "run_export", str(export.pk), wait=True, stdout=io.StringIO(), stderr=io.StringIO()
        )
