"""The states of a run: every move and every write of its worker goes through exports.runs."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from exports import runs
from exports.models import ExportRun

pytestmark = pytest.mark.django_db
Status = ExportRun.Status
EXPORTS = Path(__file__).resolve().parents[2] / "exports"


@pytest.fixture
def run(make_export, everyone):
    return ExportRun.objects.create(export=make_export(everyone), trigger=ExportRun.Trigger.USER)


def test_a_queued_run_is_claimed_once(run):
    stalled_before = timezone.now() - timedelta(minutes=5)
    claimed = runs.claim(run.pk, "first", stalled_before=stalled_before)
    assert (claimed.status, claimed.worker_token) == (Status.RUNNING, "first")
    assert claimed.started_at is not None
    assert runs.claim(run.pk, "second", stalled_before=stalled_before) is None


def test_a_running_run_whose_worker_went_silent_is_claimed_again(run):
    runs.claim(run.pk, "first", stalled_before=timezone.now())
    ExportRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    claimed = runs.claim(run.pk, "second", stalled_before=timezone.now() - timedelta(minutes=5))
    assert claimed.worker_token == "second"


def test_a_worker_that_lost_its_run_can_neither_save_nor_finish_it(run):
    runs.claim(run.pk, "first", stalled_before=timezone.now())
    ExportRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    runs.claim(run.pk, "second", stalled_before=timezone.now())

    with pytest.raises(runs.RunLost):
        runs.save(run, "first", sent=10)
    with pytest.raises(runs.IllegalTransition):
        runs.transition(run, Status.SUCCEEDED, token="first")
    run.refresh_from_db()
    assert (run.status, run.sent) == (Status.RUNNING, 0)


def test_save_reads_back_a_cancel_request(run):
    runs.claim(run.pk, "worker", stalled_before=timezone.now())
    runs.request_cancel(run)
    assert run.status == Status.RUNNING  # the worker ends it at its next batch boundary
    runs.save(run, "worker", sent=3)
    assert (run.cancel_requested, run.sent) == (True, 3)


def test_a_queued_run_is_cancelled_at_once(run):
    runs.request_cancel(run)
    assert (run.status, run.cancel_requested) == (Status.CANCELLED, True)
    assert run.finished_at is not None


def test_a_finished_run_cannot_move_again(run):
    runs.transition(run, Status.SKIPPED, last_error="Segment not ready")
    with pytest.raises(runs.IllegalTransition):
        runs.transition(run, Status.RUNNING)
    runs.request_cancel(run)
    assert run.status == Status.SKIPPED


@pytest.mark.parametrize(
    ("failed", "skipped", "expected"),
    [
        (0, 0, Status.SUCCEEDED),
        (0, 40, Status.SUCCEEDED),
        (1, 0, Status.COMPLETED_WITH_WARNINGS),
        (3, 40, Status.COMPLETED_WITH_WARNINGS),
    ],
)
def test_only_refusals_make_a_run_complete_with_warnings(failed, skipped, expected):
    assert runs.outcome(ExportRun(failed=failed, skipped=skipped)) == expected


RUN_STATE = {"status", "worker_token", "heartbeat_at", "cancel_requested", "finished_at"}


def test_no_module_but_runs_changes_a_runs_state():
    """An ``update(...)`` or raw ``UPDATE`` of a run's state anywhere else bypasses the guards."""
    offenders = []
    for path in sorted(EXPORTS.rglob("*.py")):
        if path.name == "runs.py" or "migrations" in path.parts:
            continue
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "update"
                and RUN_STATE & {keyword.arg for keyword in node.keywords}
                and "ExportRun" in ast.get_source_segment(source, node.func.value)
            ):
                offenders.append(f"{path.name}:{node.lineno}")
        if f"UPDATE {{{ExportRun.__name__}._meta.db_table}}" in source:
            offenders.append(f"{path.name}: raw UPDATE of the run")
    assert offenders == []


def test_the_run_sql_lives_in_the_recipients_module():
    engine = (EXPORTS / "engine.py").read_text()
    for statement in ("INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE ", "ANALYZE", "SELECT "):
        assert statement not in engine, statement
