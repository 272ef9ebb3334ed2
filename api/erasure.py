"""Erase a person: their profile and memberships go at once, and every export that ever
delivered their address removes it from its list, on its next run whatever its sync mode, or
at once (``propagate_now``). What is kept: ``api.models.Erasure``, without the address.

How the exports learn it: the address's sync state becomes ``ERASING`` in each export; a run
puts such addresses among its removals (``exports.recipients.queue_removals``) and records
them as removed; ``confirm_after_run`` (on ``exports.signals.export_run_finished``) then marks the
export confirmed and forgets the address. Someone imported again after an erasure is new: the
next run adds them (and the erasure is confirmed, as nothing of the old delivery is left).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import Erasure, ErasureExport
from config.translation import shown, stored
from connections import services as connection_services
from connections.types.base import BackendError
from core import crypto
from exports import unchanged
from exports.models import Export, ExportRun, SyncState
from exports.recipients import field_value
from segments.models import Profile, SegmentMember

logger = logging.getLogger(__name__)


def normalised(address: str) -> str:
    """As the exports compare addresses (``exports.recipients``): trimmed, lower case."""
    return address.strip().lower()


def address_hash(address: str) -> str:
    key = (settings.ERASURE_HASH_KEY or settings.SECRET_KEY).encode()
    return hmac.new(key, normalised(address).encode(), hashlib.sha256).hexdigest()


def _addresses_of(profiles: list[Profile]) -> set[str]:
    """Every address the exports could have sent for these profiles: their email and each
    field an export reads the address from."""
    fields = set(Export.objects.values_list("email_field", flat=True)) | {"email"}
    values = Profile.objects.filter(pk__in=[p.pk for p in profiles]).values_list(
        *[field_value(name) for name in sorted(fields)]
    )
    return {normalised(value) for row in values for value in row if value and value.strip()}


@transaction.atomic
def erase(*, user, customer_id: str = "", email: str = "", propagate_now: bool = False) -> Erasure:
    """Erase by customer id (that profile) or by email (every profile with that address).

    Returns the record. With ``propagate_now`` the address is removed from each list at once
    (a service that refuses leaves that export pending for its next run).
    """
    if customer_id:
        profiles = list(Profile.objects.filter(customer_id=customer_id))
        addresses = _addresses_of(profiles)
        key = Erasure.Key.CUSTOMER_ID
    else:
        profiles = list(Profile.objects.filter(email__iexact=email.strip()))
        addresses = {normalised(email)} | _addresses_of(profiles)
        key = Erasure.Key.EMAIL
    memberships = SegmentMember.objects.filter(profile_id__in=[p.pk for p in profiles])
    erasure = Erasure.objects.create(
        requested_by=user,
        erased_by=key,
        address_hash=address_hash(sorted(addresses)[0] if addresses else customer_id or email),
        profiles_erased=len(profiles),
        memberships_erased=memberships.count(),
    )
    memberships.delete()
    Profile.objects.filter(pk__in=[p.pk for p in profiles]).delete()
    pending = _mark_for_removal(erasure, addresses)
    if propagate_now and pending:
        transaction.on_commit(lambda: remove_now(erasure_id=erasure.pk))
    return erasure


def _mark_for_removal(erasure: Erasure, addresses: set[str]) -> list[ErasureExport]:
    states = SyncState.objects.filter(email__in=addresses).select_related("export")
    pending, touched = [], set()
    for state in states:
        touched.add(state.export_id)
        record = ErasureExport(
            erasure=erasure, export=state.export, export_name=state.export.display_name
        )
        if state.state == SyncState.State.REMOVED:  # already off the list
            record.confirmed_at = timezone.now()
        else:
            record.encrypted_address = crypto.encrypt_json({"address": state.email})
            pending.append(record)
        record.save()
    SyncState.objects.filter(email__in=addresses, state=SyncState.State.REMOVED).delete()
    SyncState.objects.filter(email__in=addresses).update(state=SyncState.State.ERASING)
    unchanged.sync_state_changed(touched)
    return pending


def _address(record: ErasureExport) -> str:
    return crypto.decrypt_json(record.encrypted_address)["address"]


def _confirm(record: ErasureExport, run: ExportRun | None) -> None:
    SyncState.objects.filter(export_id=record.export_id, email=_address(record)).delete()
    record.encrypted_address = ""
    record.confirmed_at = timezone.now()
    record.confirmed_by_run = run
    record.last_error = ""
    record.save()


def remove_now(*, erasure_id: int) -> None:
    """Remove the address from each pending export's list now, through its connection."""
    records = ErasureExport.objects.filter(
        erasure_id=erasure_id, confirmed_at__isnull=True, export__connection__isnull=False
    ).select_related("export__connection")
    for record in records:
        export = record.export
        try:
            result = connection_services.backend_for(export.connection).remove(
                export.list_id, [_address(record)]
            )
        except BackendError as error:
            record.last_error = stored(error.message)
            record.save(update_fields=["last_error"])
            continue
        if failures := result.failures:
            record.last_error = stored(failures[0].message)
            record.save(update_fields=["last_error"])
            continue
        _confirm(record, None)


def confirm_after_run(sender, *, run_id: int, **kwargs) -> None:
    """``exports.signals.export_run_finished``: the pending erasures of the run's export whose
    address the run removed (or added again, for someone imported anew) are confirmed."""
    run = ExportRun.objects.get(pk=run_id)
    pending = ErasureExport.objects.filter(export_id=run.export_id, confirmed_at__isnull=True)
    for record in pending:
        state = (
            SyncState.objects.filter(export_id=run.export_id, email=_address(record))
            .values_list("state", flat=True)
            .first()
        )
        if state != SyncState.State.ERASING:
            _confirm(record, run)


def erasure_summary(erasure: Erasure) -> dict:
    exports = list(erasure.exports.all())
    return {
        "id": erasure.pk,
        "requested_by": erasure.requested_by.get_username() if erasure.requested_by else None,
        "requested_at": erasure.requested_at,
        "erased_by": erasure.erased_by,
        "address_hash": erasure.address_hash,
        "profiles_erased": erasure.profiles_erased,
        "memberships_erased": erasure.memberships_erased,
        "exports": [
            {
                "export": record.export_id,
                "export_name": record.export_name,
                "confirmed": record.confirmed_at is not None,
                "confirmed_at": record.confirmed_at,
                "confirmed_by_run": record.confirmed_by_run_id,
                "last_error": shown(record.last_error),
            }
            for record in exports
        ],
    }
