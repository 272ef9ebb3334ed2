"""Deleting an erased person at every service (``exports.erasures``): the record per export,
propagation in a worker through the connection's rate limiter with the engine's retries, at
once or when the export's next run ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from connections.types.base import Permanent, Transient
from exports import engine, services
from exports.erasures import confirm_after_run, erasure_propagate, erasure_request
from exports.models import Erasure, ErasureExport, Export, ExportRun, Refusal, SyncState
from segments.models import Segment
from segments.services import segment_refresh
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
Status = ErasureExport.Status


class ErasingBackend:
    """Beside the recording backend (which runs use): ``erase`` deletes the person from every
    list, after raising the errors queued in ``erase_errors``, and refuses those in ``refuse``."""

    def __init__(self, recording):
        self.recording = recording
        self.erase_errors: list[Exception] = []
        self.refuse: set[str] = set()
        self.erased: list[str] = []
        self.rate_limit = 7.0

    def erase(self, list_id, email):
        if self.erase_errors:
            raise self.erase_errors.pop(0)
        if email in self.refuse:
            raise Permanent("Not allowed to delete this person.")
        for members in self.recording.lists.values():
            members.pop(email, None)
        self.erased.append(email)


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


def test_propagate_now_queues_the_deletion_at_commit(
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
    service.erase_errors = [Transient("503 from the service"), Transient("timed out")]
    erasure = erasure_request(user=None, customer_id="p0")

    erasure_propagate(erasure_id=erasure.pk)

    assert ErasureExport.objects.get().status == Status.CONFIRMED
    assert "p0@example.com" not in backend.lists["list-1"]


def test_errors_that_outlast_the_retries_leave_the_export_failed_with_the_reason(
    delivered, service, settings
):
    settings.EXPORT_MAX_RETRIES = 1
    service.erase_errors = [Transient("503 from the service"), Transient("503 again")]
    erasure = erasure_request(user=None, customer_id="p0")

    erasure_propagate(erasure_id=erasure.pk)

    record = ErasureExport.objects.get()
    assert (record.status, record.last_error, record.confirmed_at) == (
        Status.FAILED,
        "503 again",
        None,
    )
    assert record.encrypted_address  # kept until some attempt is confirmed


def test_a_refusal_fails_that_export_and_its_next_runs_end_tries_again(
    delivered, service, backend, django_capture_on_commit_callbacks
):
    service.refuse = {"p1@example.com"}
    erasure = erasure_request(user=None, customer_id="p1")

    erasure_propagate(erasure_id=erasure.pk)
    record = ErasureExport.objects.get()
    assert (record.status, record.last_error) == (
        Status.FAILED,
        "Not allowed to delete this person.",
    )
    assert "p1@example.com" in backend.lists["list-1"]

    service.refuse = set()
    with django_capture_on_commit_callbacks(execute=True):
        run = run_now(delivered)

    record.refresh_from_db()
    assert (record.status, record.confirmed_by_run, record.last_error) == (
        Status.CONFIRMED,
        run,
        "",
    )
    assert service.erased == ["p1@example.com"]
    assert "p1@example.com" not in backend.lists["list-1"]


def test_a_permanent_error_fails_the_export_without_retrying(delivered, service):
    service.erase_errors = [Permanent("The list is locked."), Transient("not reached")]
    erasure = erasure_request(user=None, customer_id="p0")

    erasure_propagate(erasure_id=erasure.pk)

    assert ErasureExport.objects.get().last_error == "The list is locked."
    assert len(service.erase_errors) == 1


def test_a_confirmed_export_is_not_called_again(delivered, service):
    erasure = erasure_request(user=None, customer_id="p0")
    erasure_propagate(erasure_id=erasure.pk)

    erasure_propagate(erasure_id=erasure.pk)

    assert service.erased == ["p0@example.com"]


def test_an_address_a_mirror_run_removed_is_still_deleted_at_the_service(
    backend, service, make_export, everyone
):
    ProfileFactory(customer_id="gone", email="gone@example.com")
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    # Left the segment: removed from the list, which keeps what the service knows of them.
    SyncState.objects.filter(email="gone@example.com").update(state=SyncState.State.REMOVED)

    erasure = erasure_request(user=None, email="gone@example.com")
    assert ErasureExport.objects.get().status == Status.PENDING
    erasure_propagate(erasure_id=erasure.pk)

    record = ErasureExport.objects.get()
    assert (record.status, record.encrypted_address) == (Status.CONFIRMED, "")
    assert service.erased == ["gone@example.com"]
    assert not SyncState.objects.filter(email="gone@example.com").exists()
    assert Erasure.objects.get().profiles_erased == 1


def test_a_run_leaves_an_erased_address_to_the_erasure_whatever_its_mode(
    backend, service, make_export, everyone, django_capture_on_commit_callbacks
):
    ProfileFactory(customer_id="p0", email="p0@example.com")
    ProfileFactory(customer_id="p1", email="p1@example.com")
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    erasure_request(user=None, customer_id="p0")

    with django_capture_on_commit_callbacks(execute=True):
        run = run_now(export)

    assert (run.removed, backend.removed) == (0, [])  # no removal: a deletion, after the run
    assert service.erased == ["p0@example.com"]
    assert ErasureExport.objects.get().confirmed_by_run == run
    assert set(backend.lists["list-1"]) == {"p1@example.com"}


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
    assert service.erased == []  # left to the run in flight
    # The run sends p1 from recipients it computed before the erasure, and records it so.
    SyncState.objects.filter(email="p1@example.com").update(state=SyncState.State.IN_LIST)

    finish(run, django_capture_on_commit_callbacks)

    record = ErasureExport.objects.get()
    assert (record.status, record.confirmed_by_run) == (Status.CONFIRMED, run)
    assert service.erased == ["p1@example.com"]
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
    finish(run, django_capture_on_commit_callbacks)  # it had not reached p9: nothing to delete
    record.refresh_from_db()
    assert (record.status, record.confirmed_by_run) == (Status.CONFIRMED, run)
    assert backend.removed == []


def test_the_next_runs_end_deletes_the_person_without_propagate_now(
    delivered, service, backend, django_capture_on_commit_callbacks
):
    erasure_request(user=None, customer_id="p0")
    assert service.erased == []

    with django_capture_on_commit_callbacks(execute=True):
        run = run_now(delivered)

    record = ErasureExport.objects.get()
    assert (record.status, record.confirmed_by_run) == (Status.CONFIRMED, run)
    assert service.erased == ["p0@example.com"]
    assert "p0@example.com" not in backend.lists["list-1"]


def test_someone_imported_again_before_the_next_run_is_added_as_new_and_not_deleted(
    delivered, everyone, service, backend, django_capture_on_commit_callbacks
):
    erasure_request(user=None, customer_id="p0")
    ProfileFactory(customer_id="p0-again", email="p0@example.com")
    segment_refresh(segment_id=everyone.pk)

    with django_capture_on_commit_callbacks(execute=True):
        run = run_now(delivered)

    assert run.added == 1
    assert (ErasureExport.objects.get().status, service.erased) == (Status.CONFIRMED, [])
    assert "p0@example.com" in backend.lists["list-1"]
    state = SyncState.objects.get(export=delivered, email="p0@example.com")
    assert state.state == SyncState.State.IN_LIST  # theirs now: not sent as new again


def test_a_runs_end_deletes_the_person_at_that_export_only(
    delivered, everyone, make_export, service, django_capture_on_commit_callbacks
):
    other = make_export(everyone, display_name="Offers")
    run_now(other)
    erasure_request(user=None, customer_id="p0")

    with django_capture_on_commit_callbacks(execute=True):
        run_now(delivered)

    statuses = dict(ErasureExport.objects.values_list("export_id", "status"))
    assert statuses == {delivered.pk: Status.CONFIRMED, other.pk: Status.PENDING}
    assert service.erased == ["p0@example.com"]


def test_an_erasure_forgets_what_the_service_refused_for_the_address(
    backend, make_export, everyone
):
    backend.lasting_refusal_codes = frozenset({"1"})
    ProfileFactory(customer_id="r", email="reject-me@example.com")
    export = make_export(everyone)
    run_now(export)
    assert Refusal.objects.filter(export=export, email="reject-me@example.com").exists()

    erasure_request(user=None, customer_id="r")
    assert not Refusal.objects.filter(email="reject-me@example.com").exists()
