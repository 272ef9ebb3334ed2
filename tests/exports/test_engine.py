from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection as db_connection
from django.test import TestCase

from config.translation import shown
from connections.models import Connection
from connections.types.base import AuthRevoked, ListNotFound, RateLimited, Transient
from exports import engine, recipients, runs, services
from exports.models import ExportRun, ExportRunFailure, SyncState
from exports.recipients import MEMBERS_FROM, RecipientTable, build_recipients
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db

Status = ExportRun.Status


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.EXPORT_BACKOFF_BASE_SECONDS = 0.001
    settings.EXPORT_BACKOFF_MAX_SECONDS = 0.01
    settings.EXPORT_CONCURRENCY = 2


def run_now(export, user=None) -> ExportRun:
    run = services.run_request(export=export, user=user)
    with TestCase.captureOnCommitCallbacks(execute=True):  # the alerts a run's end queues
        return engine.execute(run.pk)


def test_every_member_arrives_once_and_bad_emails_are_skipped_with_a_reason(
    backend, make_export, everyone
):
    for number in range(7):
        ProfileFactory(email=f"Person{number}@Example.com", first_name=f"F{number}", last_name="L")
    ProfileFactory(customer_id="dup", email=" person0@example.COM ")
    ProfileFactory(customer_id="none", email="")
    ProfileFactory(customer_id="bad", email="not-an-address")
    run = run_now(make_export(everyone))

    # Skips for the data's own sake are listed, but they are no warning.
    assert run.status == Status.SUCCEEDED
    assert (run.profiles_total, run.to_send, run.sent, run.failed, run.skipped) == (10, 7, 7, 0, 3)
    assert sorted(backend.lists["list-1"]) == [f"person{n}@example.com" for n in range(7)]
    assert backend.lists["list-1"]["person3@example.com"].first_name == "F3"
    skipped = {row.customer_id: row.code for row in ExportRunFailure.objects.filter(run=run)}
    assert skipped == {"dup": "duplicate_email", "none": "missing_email", "bad": "invalid_email"}


def test_a_member_of_two_segments_is_sent_once(backend, make_export):
    ProfileFactory(email="both@example.com", attributes={"a": "1", "b": "1"})
    ProfileFactory(email="one@example.com", attributes={"a": "1"})
    first = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "a", "operator": "equals", "value": "1"}]}
    )
    second = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "b", "operator": "equals", "value": "1"}]}
    )
    run = run_now(make_export(first, second))
    assert (run.status, run.profiles_total, run.sent) == (Status.SUCCEEDED, 2, 2)
    assert backend.calls == 1


def test_records_the_service_refuses_are_listed_with_its_reason(backend, make_export, everyone):
    ProfileFactory(email="ok@example.com")
    ProfileFactory(customer_id="r1", email="reject@example.com")
    run = run_now(make_export(everyone))
    assert (run.status, run.sent, run.failed) == (Status.COMPLETED_WITH_WARNINGS, 1, 1)
    failure = ExportRunFailure.objects.get(run=run)
    assert (failure.customer_id, failure.code, failure.reason) == (
        "r1",
        "1",
        "Invalid Email Address",
    )


def test_rate_limits_and_transient_errors_are_waited_out(backend, make_export, everyone):
    for number in range(10):
        ProfileFactory(email=f"p{number}@example.com")
    backend.errors = [RateLimited("slow down", wait=0.01, hinted=True)] * 8 + [Transient("502")] * 3
    run = run_now(make_export(everyone))
    assert (run.status, run.sent) == (Status.SUCCEEDED, 10)
    assert len(backend.lists["list-1"]) == 10


def test_a_transient_error_that_never_ends_fails_the_run_in_plain_words(
    backend, make_export, everyone, settings
):
    settings.EXPORT_MAX_RETRIES = 2
    ProfileFactory()
    backend.errors = [Transient("The service answered 503.")] * 10
    run = run_now(make_export(everyone))
    assert run.status == Status.FAILED
    error = shown(run.last_error)
    assert "could not be reached or kept failing: The service answered 503." in error


def test_a_retry_waits_as_long_as_the_service_asked_and_within_bounds(settings):
    settings.EXPORT_BACKOFF_BASE_SECONDS = 0.5
    settings.EXPORT_BACKOFF_MAX_SECONDS = 10
    settings.EXPORT_MAX_RATE_LIMIT_WAIT_SECONDS = 60
    assert engine._retry_pause(Transient("503", wait=30), attempt=1) == 30
    assert engine._retry_pause(Transient("503", wait=3600), attempt=1) == 60
    unhinted = engine._retry_pause(Transient("503"), attempt=1)
    assert 0.5 <= unhinted <= 1.0  # backoff with jitter: half to all of base * 2


def test_revoked_credentials_fail_the_run_and_mark_the_connection(
    backend, make_export, everyone, connection
):
    ProfileFactory()
    revoked = "Autopilot rejected the stored API key. Edit the connection and enter a new one."
    backend.errors = [AuthRevoked(revoked)]
    run = run_now(make_export(everyone))
    assert (run.status, shown(run.last_error)) == (Status.FAILED, revoked)  # said once
    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_REAUTHENTICATION


def test_a_list_gone_from_the_service_fails_the_run_at_once_and_alerts_once(
    backend, make_export, everyone, connection, alice, settings
):
    settings.EXPORT_CONCURRENCY = 1
    alice.email = "alice@example.com"
    alice.save()
    for number in range(9):  # three batches
        ProfileFactory(email=f"p{number}@example.com")
    backend.errors = [ListNotFound(service="Autopilot", list_id="list-1")] * 3
    run = run_now(make_export(everyone))

    assert (run.status, backend.calls) == (Status.FAILED, 1)  # no retry, no next batch
    assert shown(run.last_error) == (
        "Autopilot has no list with the ID list-1: it may have been deleted there. "
        "Edit the export and choose another list."
    )
    connection.refresh_from_db()
    assert (connection.status, connection.last_error) == (Connection.Status.HEALTHY, "")
    assert [message.subject for message in mail.outbox] == ["Export “Newsletter” failed"]


def test_a_second_run_request_is_refused_while_one_is_active(make_export, everyone):
    export = make_export(everyone)
    services.run_request(export=export)
    with pytest.raises(services.ExportAlreadyRunning, match="already running"):
        services.run_request(export=export)
    assert ExportRun.objects.filter(export=export).count() == 1


def test_a_run_resumes_after_its_checkpoint_when_the_worker_was_lost(
    backend, make_export, everyone, settings
):
    profiles = [ProfileFactory(email=f"p{number}@example.com") for number in range(9)]
    export = make_export(everyone)
    settings.EXPORT_CONCURRENCY = 1
    run = services.run_request(export=export)

    def die_after_two_batches(recording):
        if recording.calls == 3:
            raise SystemExit  # the worker process is gone mid-run

    backend.before_push = die_after_two_batches
    with pytest.raises(SystemExit):
        engine.execute(run.pk)
    run.refresh_from_db()
    # Members' positions follow their profile ids: the checkpoint is the last profile of the
    # second batch.
    assert (run.status, run.checkpoint, run.sent) == (
        Status.RUNNING,
        MEMBERS_FROM + profiles[5].pk,
        6,
    )

    backend.before_push = None
    settings.EXPORT_STALLED_AFTER_SECONDS = 0
    resumed = engine.execute(run.pk)
    assert (resumed.status, resumed.sent) == (Status.SUCCEEDED, 9)
    assert resumed.checkpoint == MEMBERS_FROM + profiles[8].pk
    assert backend.calls == 4  # the batch in flight when the worker died was sent again, no more
    assert len(backend.lists["list-1"]) == 9


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_run_at_the_next_batch(
    backend, make_export, everyone, settings, monkeypatch
):
    monkeypatch.setattr("exports.services._enqueue", lambda run_id: None)  # run it here instead
    settings.EXPORT_CONCURRENCY = 1
    for number in range(9):
        ProfileFactory(email=f"p{number}@example.com")
    run = services.run_request(export=make_export(everyone))

    def cancel_during_first(recording):
        if recording.calls == 1:
            services.run_cancel(run=run)

    backend.before_push = cancel_during_first
    finished = engine.execute(run.pk)
    assert finished.status == Status.CANCELLED
    assert finished.sent == 3


def test_an_export_whose_segment_failed_is_skipped_with_the_reason(backend, make_export):
    broken = SegmentFactory(
        name="Broken", rules={"match": "all", "conditions": [{"field": "gone"}]}
    )
    run = run_now(make_export(broken))
    assert run.status == Status.SKIPPED
    assert "segment “Broken” failed to refresh" in shown(run.last_error)


def test_a_run_whose_recipient_table_was_lost_builds_it_again_and_resumes_at_its_checkpoint(
    backend, make_export, everyone, settings
):
    """The table is unlogged: a database crash empties it. The run must still reach everyone."""
    profiles = [ProfileFactory(email=f"p{number}@example.com") for number in range(9)]
    export = make_export(everyone)
    settings.EXPORT_CONCURRENCY = 1
    run = services.run_request(export=export)

    def die_after_two_batches(recording):
        if recording.calls == 3:
            raise SystemExit

    backend.before_push = die_after_two_batches
    with pytest.raises(SystemExit):
        engine.execute(run.pk)
    RecipientTable(run).drop()

    backend.before_push = None
    settings.EXPORT_STALLED_AFTER_SECONDS = 0
    resumed = engine.execute(run.pk)
    assert resumed.status == Status.SUCCEEDED
    assert resumed.checkpoint == MEMBERS_FROM + profiles[8].pk
    assert sorted(backend.lists["list-1"]) == [f"p{number}@example.com" for number in range(9)]
    assert not RecipientTable(run).exists()
    # Everyone acknowledged is in the sync state, the batches before the loss included.
    assert SyncState.objects.filter(export=export, state=SyncState.State.IN_LIST).count() == 9


def _lose_the_members_table_as_a_crash_does(run: ExportRun) -> None:
    """After a crash PostgreSQL resets an unlogged table to empty: it is still there."""
    with db_connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {RecipientTable(run).name}")


def _run_dying_after_two_of_three_batches(backend, export, settings) -> ExportRun:
    settings.EXPORT_CONCURRENCY = 1
    run = services.run_request(export=export)

    def die_after_two_batches(recording):
        if recording.calls == 3:
            raise SystemExit

    backend.before_push = die_after_two_batches
    with pytest.raises(SystemExit):
        engine.execute(run.pk)
    backend.before_push = None
    settings.EXPORT_STALLED_AFTER_SECONDS = 0
    return run


def test_a_run_whose_recipients_a_crash_emptied_computes_them_again_and_reaches_everyone(
    backend, make_export, everyone, settings
):
    for number in range(9):
        ProfileFactory(email=f"p{number}@example.com")
    export = make_export(everyone)
    run = _run_dying_after_two_of_three_batches(backend, export, settings)
    _lose_the_members_table_as_a_crash_does(run)

    resumed = engine.execute(run.pk)

    assert (resumed.status, resumed.sent, runs.unaccounted(resumed)) == (Status.SUCCEEDED, 9, 0)
    assert sorted(backend.lists["list-1"]) == [f"p{number}@example.com" for number in range(9)]
    assert SyncState.objects.filter(export=export, state=SyncState.State.IN_LIST).count() == 9


def test_a_run_whose_counts_do_not_add_up_is_never_done_and_the_next_run_sends_the_rest(
    backend, make_export, everyone, settings, monkeypatch
):
    for number in range(9):
        ProfileFactory(email=f"p{number}@example.com")
    export = make_export(everyone)
    run = _run_dying_after_two_of_three_batches(backend, export, settings)
    _lose_the_members_table_as_a_crash_does(run)
    with monkeypatch.context() as patched:
        # Were the loss not noticed, the run would read nothing more after its checkpoint.
        patched.setattr(RecipientTable, "intact", lambda table, run: True)
        resumed = engine.execute(run.pk)

    assert resumed.status == Status.FAILED
    assert runs.unaccounted(resumed) == 3
    assert "3 profiles were neither delivered nor counted" in shown(resumed.last_error)
    following = run_now(export)
    assert not following.nothing_changed
    assert (following.status, runs.unaccounted(following)) == (Status.SUCCEEDED, 0)
    assert sorted(backend.lists["list-1"]) == [f"p{number}@example.com" for number in range(9)]


def test_the_sweeper_drops_the_recipient_tables_of_runs_that_ended(make_export, everyone):
    ProfileFactory()
    export = make_export(everyone)
    ended = services.run_request(export=export)
    build_recipients(ended)
    runs.transition(ended, Status.CANCELLED)
    active = services.run_request(export=make_export(everyone))
    build_recipients(active)

    services.runs_resume_stalled()

    tables = set(db_connection.introspection.table_names())
    assert not {f"export_run_{ended.pk}_recipients", f"export_run_{ended.pk}_removals"} & tables
    assert RecipientTable(active).exists()


def test_many_adds_kept_for_the_sync_state_are_written_without_waiting_for_the_clock(
    backend, make_export, everyone, settings, monkeypatch
):
    """A fast run passed the adds' limit between two writes by the clock (and had its range
    read from the table): once the adds kept are many, a write is due."""
    settings.EXPORT_CONCURRENCY = 1
    settings.EXPORT_SYNC_STATE_SECONDS = 3600
    monkeypatch.setattr(backend, "batch_size", 1)
    monkeypatch.setattr(recipients.AcknowledgedAdds, "WRITE_AT", 5)
    for number in range(10):
        ProfileFactory(email=f"m{number}@example.com")
    writes = []
    monkeypatch.setattr(
        engine.BackgroundSync, "_write", lambda sync, after, up_to: writes.append(up_to)
    )

    run = run_now(make_export(everyone))

    assert run.sent == 10
    assert writes  # the clock alone would have waited an hour


def test_a_long_run_writes_its_sync_state_on_the_way_a_bounded_number_of_times(
    backend, make_export, everyone, settings, monkeypatch
):
    """Each write reads the run's whole table: however long the run (here every batch is
    overdue for a write), it writes at most ``SYNC_STATE_WRITES`` times on the way, and the
    end of the run writes the rest."""
    settings.EXPORT_CONCURRENCY = 1
    settings.EXPORT_SYNC_STATE_SECONDS = -1
    monkeypatch.setattr(backend, "batch_size", 1)
    for number in range(40):
        ProfileFactory(email=f"m{number}@example.com")
    writes = []
    monkeypatch.setattr(
        engine.BackgroundSync, "_write", lambda sync, after, up_to: writes.append(up_to)
    )
    export = make_export(everyone)

    run = run_now(export)

    assert run.sent == 40
    assert 1 <= len(writes) <= engine.SYNC_STATE_WRITES
    assert writes == sorted(writes)
    assert SyncState.objects.filter(export=export, state="in_list").count() == 40
