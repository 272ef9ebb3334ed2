"""The erasure endpoints' side of erasures (``POST /profiles/erase/`` and
``GET /profiles/erasures/{id}/``, served by ``segments.profile_apis``): the request goes to the
exports service (``exports.erasures.erasure_request``), and the record is answered in the shape
the API document gives it. Nothing else lives here: erasing the profiles is
``segments.services.profiles_erase``, forgetting the address at every list is
``exports.erasures``."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound

from config.translation import shown
from exports.erasures import erasure_request
from exports.models import Erasure


def erase(*, user, customer_id: str = "", email: str = "", propagate_now: bool = False) -> Erasure:
    """Erase by customer id or by email; with ``propagate_now`` the removal from every list is
    queued for a worker at once instead of waiting for each export's next run."""
    return erasure_request(
        user=user, customer_id=customer_id, email=email, propagate_now=propagate_now
    )


def erasure_get(erasure_id: int) -> Erasure:
    """The erasure with this id, or a 404 problem."""
    found = (
        Erasure.objects.select_related("requested_by")
        .prefetch_related("exports")
        .filter(pk=erasure_id)
        .first()
    )
    if found is None:
        raise NotFound(_("There is no erasure with this id."))
    return found


def erasure_summary(erasure: Erasure) -> dict:
    """The record as the API answers it (``ErasureSerializer``)."""
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
                "status": record.status,
                "confirmed": record.status == record.Status.CONFIRMED,
                "confirmed_at": record.confirmed_at,
                "confirmed_by_run": record.confirmed_by_run_id,
                "last_error": shown(record.last_error),
            }
            for record in erasure.exports.all()
        ],
    }
