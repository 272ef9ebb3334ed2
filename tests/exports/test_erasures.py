"""Forgetting an erased address at every list (``exports.erasures``): the record per export,
propagation in a worker through the connection's rate limiter with the engine's retries, and
the next run as the other way to confirm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from connections.types.base import Permanent, PushResult, RecordFailure, Transient
from exports import engine, services
from exports.erasures import confirm_after_run, erasure_propagate, erasure_request
from exports.models import Erasure, ErasureExport, Export, ExportRun, SyncState
from segments.models import Segment
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
Status = ErasureExport.Status


class ErasingBackend:
    """Wraps the recording backend: ``remove`` raises the errors queued in ``remove_errors``
    first, and refuses the addresses in ``refuse``."""

    def __init__(self, recording):
        self.recording = recording
        self.remove_errors: list[Exception] = []
        self.refuse: set[str] = set()
        self.rate_limit = 7.0

    def remove(self, list_id, emails):
        if self.remove_errors:
            raise self.remove_errors.pop(0)
        refused = [
            RecordFailure(e, "4", "Not allowed to remove") for e in emails if e in self.refuse
        ]
        if refused:
            return PushResult(accepted=0, failures=refused)
        return self.recording.remove(list_id, emails)


@pytest.fixture
def service(backend, monkeypatch, settings):
    settings.EXPORT_BACKOFF_BASE_SECONDS = 0.001
    settings.EXPORT_BACKOFF_MAX_SECONDS = 0.002
    erasing = ErasingBackend(backend)
    monkeypatch.setattr("exports.erasures.backend_for", lambda connection: erasing)
    return erasing


@pytest.fixture
def delivered(backend, make_export, everyone):
    for number in range(3):
        ProfileFactory(customer_id=f"p{number}", email=f"p{number}@example.com")
    export = make_export(everyone, sync_mode=Export.SyncMode.ADD_AND_UPDATE)
    run_now(export)
    assert set(backend.lists["list-1"]) == {f"p{number}@example.com" for number in range(3)}
    return export


def run_now(export: Export) -> ExportRun:
    return engine.execute(services.run_request(export=export).pk)


def test_an_erasure_records_each_export_that_holds_the_address_as_pending(delivered, everyone):
    erasure = erasure_request(user=None, customer_id="p1")

    record = ErasureExport.objects.get()
    assert (record.erasure, record.export, record.status) == (erasure, delivered, Status.PENDING)
    assert "p1@example.com" not in record.encrypted_address
    state = SyncState.objects.get(export=delivered, email="p1@example.com").state
    assert state == SyncState.State.ERASING
    assert (erasure.profiles_erased, erasure.memberships_erased) == (1, 1)
    assert Segment.objects.get(pk=everyone.pk).member_count == 2


def test_propagate_now_queues_the_removal_at_commit(
    delivered, service, backend, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        erasure_request(user=None, email="P2@example.com", propagate_now=True)
    assert len(queued) == 1
    assert ErasureExport.objects.get().status == Status.PENDING  # nothing sent before commit

    queued[0]()  # the task, run eagerly

    record = ErasureExport.objects.get()
    assert (record.status, record.confirmed_by_run, record.encrypted_address) == (
        Status.CONFIRMED,
        None,
        "",
    )
    assert "p2@example.com" not in backend.lists["list-1"]
    assert not SyncState.objects.filter(export=delivered, email="p2@example.com").exists()


def test_without_propagate_now_nothing_is_queued(delivered, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        erasure_request(user=None, customer_id="p0")
    assert queued == []


def test_propagation_waits_for_the_connections_rate_limit(delivered, service, monkeypatch):
    taken = []

    class Limiter:
        def __init__(self, key, rate, capacity=None):
            self.key, self.rate = key, rate

        def acquire(self, stopped=lambda: False):
            taken.append((self.key, self.rate))

    monkeypatch.setattr("exports.erasures.RateLimiter", Limiter)
    erasure = erasure_request(user=None, customer_id="p0")

    erasure_propagate(erasure_id=erasure.pk)

    assert taken == [(f"connection:{delivered.connection_id}", 7.0)]


def test_transient_errors_are_retried_with_the_engines_backoff(delivered, service, backend):
    service.remove_errors = [Transient("503 from the service"), Transient("timed out")]
    erasure = erasure_request(user=None, customer_id="p0")

    erasure_propagate(erasure_id=erasure.pk)

    assert ErasureExport.objects.get().status == Status.CONFIRMED
    assert "p0@example.com" not in backend.lists["list-1"]


def test_errors_that_outlast_the_retries_leave_the_export_failed_with_the_reason(
    delivered, service, settings
):
    settings.EXPORT_MAX_RETRIES = 1
    service.remove_errors = [Transient("503 from the service"), Transient("503 again")]
    erasure = erasure_request(user=None, customer_id="p0")

    erasure_propagate(erasure_id=erasure.pk)

    record = ErasureExport.objects.get()
    assert (record.status, record.last_error, record.confirmed_at) == (
        Status.FAILED,
        "503 again",
        None,
    )
    assert record.encrypted_address  # kept until some attempt is confirmed


def test_a_refusal_fails_that_export_and_its_next_run_confirms_it(delivered, service, backend):
    service.refuse = {"p1@example.com"}
    erasure = erasure_request(user=None, customer_id="p1")

    erasure_propagate(erasure_id=erasure.pk)
    record = ErasureExport.objects.get()
    assert (record.status, record.last_error) == (Status.FAILED, "Not allowed to remove")

    run = run_now(delivered)

    record.refresh_from_db()
    assert (record.status, record.confirmed_by_run, record.last_error) == (
        Status.CONFIRMED,
        run,
        "",
    )
    assert run.removed == 1 and "p1@example.com" not in backend.lists["list-1"]


def test_a_permanent_error_fails_the_export_without_retrying(delivered, service):
    service.remove_errors = [Permanent("The list is locked."), Transient("not reached")]
    erasure = erasure_request(user=None, customer_id="p0")

    erasure_propagate(erasure_id=erasure.pk)

    assert ErasureExport.objects.get().last_error == "The list is locked."
    assert len(service.remove_errors) == 1


def test_a_confirmed_export_is_not_called_again(delivered, service, backend):
    erasure = erasure_request(user=None, customer_id="p0")
    erasure_propagate(erasure_id=erasure.pk)
    removed = list(backend.removed)

    erasure_propagate(erasure_id=erasure.pk)

    assert backend.removed == removed == ["p0@example.com"]


def test_an_address_a_mirror_run_had_removed_is_confirmed_at_once(backend, make_export, everyone):
    ProfileFactory(customer_id="gone", email="gone@example.com")
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    SyncState.objects.filter(email="gone@example.com").update(state=SyncState.State.REMOVED)

    erasure_request(user=None, email="gone@example.com")

    record = ErasureExport.objects.get()
    assert (record.status, record.encrypted_address) == (Status.CONFIRMED, "")
    assert not SyncState.objects.filter(email="gone@example.com").exists()
    assert Erasure.objects.get().profiles_erased == 1


def in_flight(export: Export, started_ago: float = 5) -> ExportRun:
    """A run of the export that a worker took before now (its recipients computed then)."""
    run = services.run_request(export=export)
    ExportRun.objects.filter(pk=run.pk).update(
        status=ExportRun.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=started_ago),
    )
    return run


def finish(run: ExportRun, django_capture_on_commit_callbacks) -> None:
    ExportRun.objects.filter(pk=run.pk).update(status=ExportRun.Status.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        confirm_after_run(None, run_id=run.pk)


def test_what_a_run_in_flight_sends_after_the_erasure_is_removed_when_it_ends(
    delivered, service, backend, django_capture_on_commit_callbacks
):
    run = in_flight(delivered)
    with django_capture_on_commit_callbacks(execute=True):
        erasure_request(user=None, customer_id="p1", propagate_now=True)
    assert backend.removed == []  # left to the run in flight
    # The run sends p1 from recipients it computed before the erasure, and records it so.
    SyncState.objects.filter(email="p1@example.com").update(state=SyncState.State.IN_LIST)

    finish(run, django_capture_on_commit_callbacks)

    record = ErasureExport.objects.get()
    assert (record.status, record.confirmed_by_run) == (Status.CONFIRMED, None)
    assert backend.removed == ["p1@example.com"]
    assert not SyncState.objects.filter(email="p1@example.com").exists()


def test_an_export_whose_first_run_is_in_flight_is_watched_until_it_ends(
    backend, make_export, everyone, django_capture_on_commit_callbacks
):
    ProfileFactory(customer_id="p9", email="p9@example.com")
    export = make_export(everyone)
    run = in_flight(export)

    erasure = erasure_request(user=None, customer_id="p9")

    record = ErasureExport.objects.get()
    assert (record.erasure, record.export, record.status) == (erasure, export, Status.PENDING)
    finish(run, django_capture_on_commit_callbacks)  # it had not reached p9: nothing to remove
    record.refresh_from_db()
    assert (record.status, record.confirmed_by_run) == (Status.CONFIRMED, run)
    assert backend.removed == []


def test_a_queued_run_computes_its_recipients_after_the_erasure_and_confirms_it(delivered, backend):
    erasure_request(user=None, customer_id="p0")

    run = run_now(delivered)

    record = ErasureExport.objects.get()
    assert (record.status, record.confirmed_by_run) == (Status.CONFIRMED, run)
    assert backend.removed == ["p0@example.com"]
