"""Erase a person, and forget their address at every list an export delivered it to.

``erasure_request`` erases the profiles now (``segments.services.profiles_erase``: memberships,
member counts and an audit entry) and records, per export that holds the address, that it must
forget it (``ErasureExport``, the address encrypted until then). The address's sync state in
each of those exports becomes ``ERASING``. Forgetting it then happens in a worker, one of two
ways, whichever comes first:

- the export's next run puts such addresses among its removals, whatever its sync mode
  (``exports.recipients``), and ``confirm_after_run`` (on ``export_run_finished``) confirms;
- ``erasure_propagate`` (the ``propagate_erasure`` task, queued at commit with
  ``propagate_now``) removes the address from each list through the connection's rate limiter,
  with the engine's retries (``engine.call_with_retries``), and records per export whether the
  service confirmed it or why not.

Someone imported again after an erasure is new: the next run adds them (and the erasure is
confirmed, as nothing of the old delivery is left).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.translation import stored
from connections import crypto
from connections.services import backend_for
from connections.types.base import BackendError
from exports import unchanged
from exports.engine import call_with_retries
from exports.models import Erasure, ErasureExport, Export, ExportRun, SyncState
from exports.ratelimit import RateLimiter
from exports.recipients import field_value
from segments.models import Profile
from segments.services import profiles_erase

logger = logging.getLogger(__name__)
Status = ErasureExport.Status


def normalised(address: str) -> str:
    """As the exports compare addresses (``exports.recipients``): trimmed, lower case."""
    return address.strip().lower()


def address_hash(address: str) -> str:
    key = (settings.ERASURE_HASH_KEY or settings.SECRET_KEY).encode()
    return hmac.new(key, normalised(address).encode(), hashlib.sha256).hexdigest()


def _addresses_of(profile_ids: list[int]) -> dict[str, set[str]]:
    """Every address the exports could send for these profiles, by the field an export reads
    it from (their email, and each field an export is set to read instead)."""
    fields = sorted(set(Export.objects.values_list("email_field", flat=True)) | {"email"})
    rows = Profile.objects.filter(pk__in=profile_ids).values_list(
        *[field_value(name) for name in fields]
    )
    by_field: dict[str, set[str]] = {name: set() for name in fields}
    for row in rows:
        for name, value in zip(fields, row, strict=True):
            if value and value.strip():
                by_field[name].add(normalised(value))
    return by_field


@transaction.atomic
def erasure_request(
    *, user, customer_id: str = "", email: str = "", propagate_now: bool = False
) -> Erasure:
    """Erase by customer id (that profile) or by email (every profile with that address).

    Returns the record. With ``propagate_now`` a worker removes the address from each list as
    soon as this commits (``erasure_propagate``); otherwise each export's next run does.
    """
    if customer_id:
        profiles = Profile.objects.filter(customer_id=customer_id)
        key = Erasure.Key.CUSTOMER_ID
    else:
        profiles = Profile.objects.filter(email__iexact=email.strip())
        key = Erasure.Key.EMAIL
    profile_ids = list(profiles.values_list("pk", flat=True))
    by_field = _addresses_of(profile_ids)
    addresses = set().union(*by_field.values()) | ({normalised(email)} if email else set())
    erasure = Erasure.objects.create(
        requested_by=user,
        erased_by=key,
        address_hash=address_hash(sorted(addresses)[0] if addresses else customer_id or email),
    )
    erased = profiles_erase(profile_ids=profile_ids, erasure_id=erasure.pk)
    erasure.profiles_erased, erasure.memberships_erased = erased.profiles, erased.memberships
    erasure.save(update_fields=["profiles_erased", "memberships_erased"])
    pending = _mark_for_removal(erasure, addresses, by_field)
    if propagate_now and pending:
        transaction.on_commit(lambda: _enqueue_propagation(erasure.pk))
    return erasure


def _enqueue_propagation(erasure_id: int) -> None:
    from exports.tasks import propagate_erasure

    propagate_erasure.delay(erasure_id)


def _mark_for_removal(
    erasure: Erasure, addresses: set[str], by_field: dict[str, set[str]]
) -> list[ErasureExport]:
    """A record per export that holds one of the addresses, and per address an export with a
    run in flight could be delivering now (that run's end settles it: ``confirm_after_run``)."""
    states = SyncState.objects.filter(email__in=addresses).select_related("export")
    records, touched, held = [], set(), set()
    for state in states:
        touched.add(state.export_id)
        held.add((state.export_id, state.email))
        record = ErasureExport(
            erasure=erasure, export=state.export, export_name=state.export.display_name
        )
        if state.state == SyncState.State.REMOVED:  # already off the list
            record.status = Status.CONFIRMED
            record.confirmed_at = timezone.now()
        else:
            record.encrypted_address = crypto.encrypt_json({"address": state.email})
        records.append(record)
    in_flight = Export.objects.filter(runs__status__in=ExportRun.ACTIVE_STATUSES).distinct()
    for export in in_flight.order_by("pk"):
        for address in sorted(by_field.get(export.email_field, ())):
            if (export.pk, address) not in held:
                records.append(
                    ErasureExport(
                        erasure=erasure,
                        export=export,
                        export_name=export.display_name,
                        encrypted_address=crypto.encrypt_json({"address": address}),
                    )
                )
    ErasureExport.objects.bulk_create(records)
    SyncState.objects.filter(email__in=addresses, state=SyncState.State.REMOVED).delete()
    SyncState.objects.filter(email__in=addresses).update(state=SyncState.State.ERASING)
    unchanged.sync_state_changed(touched)
    return [record for record in records if record.status == Status.PENDING]


def _address(record: ErasureExport) -> str:
    return crypto.decrypt_json(record.encrypted_address)["address"]


@transaction.atomic
def _confirm(record: ErasureExport, run: ExportRun | None) -> None:
    """The export's service confirmed the address is gone: forget it here too (once)."""
    address = _address(record)
    confirmed = ErasureExport.objects.filter(pk=record.pk, confirmed_at__isnull=True).update(
        status=Status.CONFIRMED,
        encrypted_address="",
        confirmed_at=timezone.now(),
        confirmed_by_run=run,
        last_error="",
    )
    if confirmed:
        SyncState.objects.filter(export_id=record.export_id, email=address).delete()


def _fail(record: ErasureExport, reason) -> None:
    ErasureExport.objects.filter(pk=record.pk, confirmed_at__isnull=True).update(
        status=Status.FAILED, last_error=stored(reason)
    )


def erasure_propagate(*, erasure_id: int) -> None:
    """Remove the erased address from each list that has not confirmed yet, through the
    export's connection: each call waits for the connection's rate limit (shared with its
    runs) and is retried on transient errors as a run's batches are. A refusal, or errors
    that outlast the retries, leave that export failed with the reason (its next run tries
    again). Runs in a worker (``exports.tasks.propagate_erasure``)."""
    records = (
        ErasureExport.objects.filter(
            erasure_id=erasure_id, confirmed_at__isnull=True, export__connection__isnull=False
        )
        # An export with a run in flight is left to that run's end (``confirm_after_run``):
        # the run may be sending the person from recipients it computed before the erasure.
        .exclude(export__runs__status__in=ExportRun.ACTIVE_STATUSES)
        .select_related("export__connection")
    )
    for record in records:
        _propagate_one(record)


def _propagate_one(record: ErasureExport) -> None:
    export = record.export
    address = _address(record)
    try:
        backend = backend_for(export.connection)
        limiter = RateLimiter(f"connection:{export.connection_id}", backend.rate_limit)
        result = call_with_retries(
            lambda: backend.remove(export.list_id, [address]),
            limiter,
            threading.Event(),
            what=f"Erasure {record.erasure_id} at export {export.pk}",
        )
    except BackendError as error:
        logger.info("Erasure %s at export %s: %s", record.erasure_id, export.pk, error)
        _fail(record, error.message)
        return
    if result.failures:
        _fail(record, result.failures[0].message)
        return
    _confirm(record, None)


def confirm_after_run(sender, *, run_id: int, **kwargs) -> None:
    """``exports.signals.export_run_finished``: settle the erasures the run's export has not
    confirmed yet.

    A run that started after the erasure knew of it: the address is confirmed gone unless it
    is still ``ERASING`` (the run did not get to it). If it is in the list again, someone was
    imported anew after the erasure, and the run added them as new.

    A run that started before the erasure may have sent the person from recipients computed
    before it: if the run left the address in the list, it becomes ``ERASING`` again; what
    such a run leaves at the service is removed by the erasure's task at once, not on the
    next run.
    """
    run = ExportRun.objects.get(pk=run_id)
    pending = ErasureExport.objects.filter(
        export_id=run.export_id, confirmed_at__isnull=True
    ).select_related("erasure")
    to_propagate = set()
    for record in pending:
        address = _address(record)
        state = (
            SyncState.objects.filter(export_id=run.export_id, email=address)
            .values_list("state", flat=True)
            .first()
        )
        started_before = run.started_at is not None and run.started_at < record.erasure.requested_at
        if not started_before:
            if state != SyncState.State.ERASING:
                _confirm(record, run)
            continue
        if state in (None, SyncState.State.REMOVED):
            _confirm(record, run)
            continue
        if state != SyncState.State.ERASING:
            SyncState.objects.filter(export_id=run.export_id, email=address).update(
                state=SyncState.State.ERASING
            )
            unchanged.sync_state_changed([run.export_id])
        to_propagate.add(record.erasure_id)
    for erasure_id in sorted(to_propagate):
        transaction.on_commit(lambda erasure_id=erasure_id: _enqueue_propagation(erasure_id))
