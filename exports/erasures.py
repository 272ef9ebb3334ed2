"""Erase a person, and delete their data at every service an export delivered it to.

``erasure_request`` erases the profiles now (``segments.services.profiles_erase``: memberships,
member counts and an audit entry) and records, per export that holds the address, that the
person must be deleted there (``ErasureExport``, the address encrypted until then). The
address's sync state in each of those exports becomes ``ERASING``, which runs leave alone.

The deletion always happens in a worker (``erasure_propagate``, the ``propagate_erasure``
task): queued as soon as the request commits with ``propagate_now``, otherwise when the
export's next run ends (``confirm_after_run``). Each call is the backend's ``erase`` (the
service's deletion for an erasure request, from the whole audience whatever the export's mode),
through the connection's rate limiter and with the engine's retries
(``engine.call_with_retries``). An export is confirmed only when its service confirmed that
call; a refusal leaves it failed with the reason, and the next run's end tries again.

Someone imported again after an erasure is new: the next run adds them (and the erasure of
that export is confirmed with it: the address now belongs to the new delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.translation import stored
from connections.services import backend_for
from connections.types.base import BackendError
from core import crypto
from exports import unchanged
from exports.engine import call_with_retries
from exports.models import (
    EMAIL,
    Erasure,
    ErasureExport,
    Export,
    ExportRun,
    FieldMapping,
    Refusal,
    SyncState,
)
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
    mapped = FieldMapping.objects.filter(destination_key=EMAIL)
    fields = sorted(set(mapped.values_list("profile_field", flat=True)) | {"email"})
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

    Returns the record. With ``propagate_now`` a worker deletes the person at each service as
    soon as this commits (``erasure_propagate``); otherwise when each export's next run ends.
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
    pending = _mark_for_deletion(erasure, addresses, by_field)
    if propagate_now and pending:
        transaction.on_commit(lambda: _enqueue_propagation(erasure.pk))
    return erasure


def _enqueue_propagation(erasure_id: int, run_id: int | None = None) -> None:
    from exports.tasks import propagate_erasure

    propagate_erasure.delay(erasure_id, run_id)


def _mark_for_deletion(
    erasure: Erasure, addresses: set[str], by_field: dict[str, set[str]]
) -> list[ErasureExport]:
    """A record per export that holds one of the addresses, and per address an export with a
    run in flight could be delivering now (that run's end settles it: ``confirm_after_run``)."""
    states = SyncState.objects.filter(email__in=addresses).select_related("export")
    records, touched, held = [], set(), set()
    for state in states:
        # Also an address a mirror run removed, or whose person opted out at the service:
        # neither deletes what the service keeps of the person.
        touched.add(state.export_id)
        held.add((state.export_id, state.email))
        records.append(
            ErasureExport(
                erasure=erasure,
                export=state.export,
                export_name=state.export.display_name,
                encrypted_address=crypto.encrypt_json({"address": state.email}),
            )
        )
    in_flight = Export.objects.filter(runs__status__in=ExportRun.HOLDING_STATUSES).distinct()
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
    SyncState.objects.filter(email__in=addresses).update(state=SyncState.State.ERASING)
    Refusal.objects.filter(email__in=addresses).delete()
    unchanged.sync_state_changed(touched)
    return records


def _address(record: ErasureExport) -> str:
    return crypto.decrypt_json(record.encrypted_address)["address"]


@transaction.atomic
def _confirm(record: ErasureExport, run: ExportRun | None) -> None:
    """The export's service confirmed the person is gone (or never had them): forget the
    address here too (once)."""
    address = _address(record)
    confirmed = ErasureExport.objects.filter(pk=record.pk, confirmed_at__isnull=True).update(
        status=Status.CONFIRMED,
        encrypted_address="",
        confirmed_at=timezone.now(),
        confirmed_by_run=run,
        last_error="",
    )
    if confirmed and record.export_id is not None:  # someone imported anew keeps their state
        SyncState.objects.filter(
            export_id=record.export_id, email=address, state=SyncState.State.ERASING
        ).delete()


def _fail(record: ErasureExport, reason) -> None:
    ErasureExport.objects.filter(pk=record.pk, confirmed_at__isnull=True).update(
        status=Status.FAILED, last_error=stored(reason)
    )


def erasure_propagate(*, erasure_id: int, run_id: int | None = None) -> None:
    """Delete the erased person at each service that has not confirmed yet, through the
    export's connection: each call waits for the connection's rate limit (shared with its
    runs) and is retried on transient errors as a run's batches are. A refusal, or errors
    that outlast the retries, leave that export failed with the reason (its next run's end
    tries again). With ``run_id`` (the run whose end asked for it) only that run's export,
    and the confirmation names the run. Runs in a worker (``exports.tasks.propagate_erasure``).
    """
    records = (
        ErasureExport.objects.filter(
            erasure_id=erasure_id, confirmed_at__isnull=True, export__connection__isnull=False
        )
        # An export with a run in flight is left to that run's end (``confirm_after_run``):
        # the run may be sending the person from recipients it computed before the erasure.
        .exclude(export__runs__status__in=ExportRun.HOLDING_STATUSES)
        .select_related("export__connection")
    )
    run = ExportRun.objects.filter(pk=run_id).first() if run_id else None
    if run_id:
        records = records.filter(export_id=run.export_id) if run else records.none()
    for record in records:
        _propagate_one(record, run)


def _propagate_one(record: ErasureExport, run: ExportRun | None) -> None:
    export = record.export
    if export is None or export.connection is None:  # gone since: nothing to delete with
        return
    address = _address(record)
    try:
        backend = backend_for(export.connection)
        limiter = RateLimiter(f"connection:{export.connection_id}", backend.rate_limit)
        call_with_retries(
            lambda: backend.erase(export.list_id, address),
            limiter,
            threading.Event(),
            what=f"Erasure {record.erasure_id} at export {export.pk}",
        )
    except BackendError as error:
        logger.info("Erasure %s at export %s: %s", record.erasure_id, export.pk, error)
        _fail(record, error.message)
        return
    _confirm(record, run)


def confirm_after_run(sender, *, run_id: int, **kwargs) -> None:
    """``exports.signals.export_run_finished``: settle the erasures the run's export has not
    confirmed yet.

    Where the export never delivered the address (no sync state), there is nothing to delete.
    A run that started after the erasure and has the address in the list again added someone
    imported anew: confirmed with it. Anything else is deleted at the service now, by the
    erasure's task: the address still waiting (``ERASING``), and what a run that started
    before the erasure delivered from recipients computed before it.
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
        if state is None or (state == SyncState.State.IN_LIST and not started_before):
            _confirm(record, run)
            continue
        if state != SyncState.State.ERASING:
            SyncState.objects.filter(export_id=run.export_id, email=address).update(
                state=SyncState.State.ERASING
            )
            unchanged.sync_state_changed([run.export_id])
        to_propagate.add(record.erasure_id)
    for erasure_id in sorted(to_propagate):
        transaction.on_commit(partial(_enqueue_propagation, erasure_id, run.pk))
