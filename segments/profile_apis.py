"""Profiles: bulk upsert by customer id (the CSV import's checks and upsert, one code path:
``segments.services.profiles_bulk_upsert``), list, get by customer id, and erase."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api import erasure
from api.fields import TextField
from api.filtering import FilterSet
from segments import services
from segments.importing import CREATED, REJECTED, UNCHANGED, UPDATED, ImportFileError
from segments.models import Profile
from segments.permissions import IMPORT_PROFILES, VIEW_PROFILE

MAX_RECORDS = 10_000


class ProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = Profile
        fields = [
            "id",
            "customer_id",
            "email",
            "first_name",
            "last_name",
            "attributes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BulkUpsertSerializer(serializers.Serializer):
    records = serializers.ListField(
        child=serializers.JSONField(),
        min_length=1,
        max_length=MAX_RECORDS,
        help_text=gettext_lazy(
            "Up to 10,000 profiles (see ProfileRecord). The records of one call are one table, "
            "as in a CSV file: a field that any record carries is set on all of them (empty "
            "where a record leaves it out)."
        ),
    )


class RecordResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    customer_id = serializers.CharField(allow_null=True)
    result = serializers.ChoiceField(choices=[CREATED, UPDATED, UNCHANGED, REJECTED])
    reason = serializers.CharField(allow_null=True)


class BulkResultSerializer(serializers.Serializer):
    """Counts by customer id, as the CSV import reports them; ``results`` has every record."""

    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = RecordResultSerializer(many=True)


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


class ProfileFilter(FilterSet):
    email = filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Profile
        fields = ["email"]


class ProfileViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProfileSerializer
    filterset_class = ProfileFilter
    lookup_field = "customer_id"
    lookup_value_regex = "[^/]+"
    required_permissions = {
        "list": VIEW_PROFILE,
        "retrieve": VIEW_PROFILE,
        "bulk": IMPORT_PROFILES,
        "erase": IMPORT_PROFILES,
    }

    def get_queryset(self):
        return Profile.objects.order_by("id")

    @extend_schema(request=BulkUpsertSerializer, responses=BulkResultSerializer, filters=False)
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def bulk(self, request):
        """Create or update up to 10,000 profiles by customer id, checked and stored exactly as
        the CSV import does; each record's result is created, updated, unchanged or rejected
        (with the reason)."""
        records = request.data.get("records") if isinstance(request.data, dict) else None
        if not (isinstance(records, list) and 1 <= len(records) <= MAX_RECORDS):
            # Only to word the error: checking 10,000 records one by one costs a third of a call.
            BulkUpsertSerializer(data=request.data).is_valid(raise_exception=True)
        try:
            return Response(services.profiles_bulk_upsert(records=records))
        except ImportFileError as error:
            # The records would add more fields than the catalogue allows (PROFILE_FIELDS_MAX):
            # the call is refused as a whole, before anything is stored.
            raise serializers.ValidationError({"records": [str(error)]}) from error

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
                    "now: remove the address from every list at once, not on the next run."
                ),
            )
        ],
    )
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def erase(self, request):
        """Erase a person by customer id or email: the profile and memberships go now; every
        export that delivered the address removes it from its list on its next run (any sync
        mode), or at once with ``?propagate=now``. The record keeps no address in clear."""
        propagate = request.query_params.get("propagate")
        if propagate not in (None, "now"):
            raise serializers.ValidationError(
                {"propagate": [_("Leave it out, or give “now” to remove the address at once.")]}
            )
        body = EraseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        record = erasure.erase(
            user=request.user,
            customer_id=body.validated_data.get("customer_id", "").strip(),
            email=body.validated_data.get("email", "").strip(),
            propagate_now=propagate == "now",
        )
        return Response(erasure.erasure_summary(record), status=status.HTTP_201_CREATED)
