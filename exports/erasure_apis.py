"""The erasure endpoints (``POST /profiles/erase/`` and ``GET /profiles/erasures/{id}/``):
the request goes to the exports service (``exports.erasures.erasure_request``), and the record
is answered in the shape the API document gives it. Erasing the profiles is
``segments.services.profiles_erase``; forgetting the address at every list is
``exports.erasures``. Routed before the profiles' own routes (``config.api_urls``)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.fields import TextField
from config.translation import shown
from exports.erasures import erasure_request
from exports.models import Erasure
from segments.permissions import IMPORT_PROFILES


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


class EraseSerializer(serializers.Serializer):
    customer_id = TextField(max_length=255, required=False, allow_blank=True)
    email = TextField(max_length=320, required=False, allow_blank=True)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("customer_id", "").strip()) == bool(attrs.get("email", "").strip()):
            raise serializers.ValidationError(_("Give either a customer_id or an email, not both."))
        return attrs


def _erase_by(key: str, other: str, max_length: int) -> dict:
    return {
        "type": "object",
        "properties": {
            key: {"type": "string", "pattern": r"^[^\x00]*\S[^\x00]*$", "maxLength": max_length},
            other: {"type": "string", "pattern": r"^\s*$"},
        },
        "required": [key],
    }


#: Exactly one of the two, as ``EraseSerializer`` checks (the other may be sent empty).
ERASE_REQUEST = {
    "oneOf": [_erase_by("customer_id", "email", 255), _erase_by("email", "customer_id", 320)]
}


class ErasureExportSerializer(serializers.Serializer):
    export = serializers.IntegerField(allow_null=True)
    export_name = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["pending", "confirmed", "failed"],
        help_text=gettext_lazy(
            "pending: the deletion at the service is still to come (at the end of the export's "
            "next run, or at once with propagate=now); confirmed: the service confirmed it; "
            "failed: the service refused it or could not be reached (see last_error; the "
            "export's next run tries again)."
        ),
    )
    confirmed = serializers.BooleanField()
    confirmed_at = serializers.DateTimeField(allow_null=True)
    confirmed_by_run = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()


class ErasureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    requested_by = serializers.CharField(allow_null=True)
    requested_at = serializers.DateTimeField()
    erased_by = serializers.ChoiceField(choices=["customer_id", "email"])
    address_hash = serializers.CharField(help_text=gettext_lazy("HMAC-SHA256 of the address."))
    profiles_erased = serializers.IntegerField()
    memberships_erased = serializers.IntegerField()
    exports = ErasureExportSerializer(many=True)


class ErasureViewSet(viewsets.ViewSet):
    """Erase a person, and follow the erasure at each export."""

    required_permissions = {"erase": IMPORT_PROFILES, "erasure": IMPORT_PROFILES}

    @extend_schema(
        request={"application/json": ERASE_REQUEST},
        responses={201: ErasureSerializer},
        filters=False,
        parameters=[
            OpenApiParameter(
                "propagate",
                str,
                enum=["now"],
                description=gettext_lazy(
                    "now: delete the person at every service at once, not when each export's "
                    "next run ends."
                ),
            )
        ],
    )
    def erase(self, request):
        """Erase a person by customer id or email: the profile and memberships go now; every
        export that delivered the address has the person deleted at its service, whatever its
        sync mode, when its next run ends, or at once with ``?propagate=now``. Follow each
        export's progress with ``GET /profiles/erasures/{id}/``. The record keeps no address in
        clear."""
        propagate = request.query_params.get("propagate")
        if propagate not in (None, "now"):
            raise serializers.ValidationError(
                {"propagate": [_("Leave it out, or give “now” to remove the address at once.")]}
            )
        body = EraseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        record = erase(
            user=request.user,
            customer_id=body.validated_data.get("customer_id", "").strip(),
            email=body.validated_data.get("email", "").strip(),
            propagate_now=propagate == "now",
        )
        return Response(erasure_summary(record), status=status.HTTP_201_CREATED)

    @extend_schema(responses=ErasureSerializer, filters=False)
    def erasure(self, request, erasure_id: str):
        """An erasure and each export's progress: pending until the export's service confirmed
        the deletion, then confirmed (or failed, with the reason)."""
        return Response(erasure_summary(erasure_get(int(erasure_id))))
