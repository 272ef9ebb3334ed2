"""Profiles: bulk upsert by customer id (the CSV import's checks and upsert, one code path:
``segments.services.profiles_bulk_upsert``), list and get by customer id. Erasing a person is
``exports.erasure_apis`` (``/profiles/erase/``), exports owning the forgetting at every list."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.filtering import FilterSet, TextFilter
from segments import origins, services
from segments.consent import consent_records_for_profile
from segments.consent_apis import ConsentRecordSerializer
from segments.importing import CREATED, REJECTED, UNCHANGED, UPDATED, ImportFileError
from segments.models import Profile
from segments.permissions import IMPORT_PROFILES, VIEW_PROFILE

MAX_RECORDS = 10_000


#: ``Profile.field_origins`` as the document gives it (``segments.origins``).
FIELD_ORIGINS_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [
            {"type": "string", "enum": [origins.IMPORT, origins.API]},
            {"type": "integer", "description": "A source's id."},
        ]
    },
    "example": {"email": 3, "first_name": 3, "tier": "import", "score": "api"},
}


class ProfileSerializer(serializers.ModelSerializer):
    field_origins = serializers.SerializerMethodField(
        help_text=gettext_lazy(
            'Which writer last set each field of the profile: "import" (a CSV import), '
            '"api" (the bulk upsert) or a source\'s id (/sources/{id}/; the source may have '
            "been deleted since). A field no write has set since origins were recorded is "
            "left out."
        )
    )

    class Meta:
        model = Profile
        fields = [
            "id",
            "customer_id",
            "email",
            "first_name",
            "last_name",
            "attributes",
            "field_origins",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(FIELD_ORIGINS_SCHEMA)
    def get_field_origins(self, profile: Profile) -> dict:
        return profile.field_origins or {}


class ProfileDetailSerializer(ProfileSerializer):
    consent_records = serializers.SerializerMethodField(
        help_text=gettext_lazy(
            "The consent records of the profile's address (trimmed, lower-case), latest first."
        )
    )

    class Meta(ProfileSerializer.Meta):
        fields = [*ProfileSerializer.Meta.fields, "consent_records"]
        read_only_fields = fields

    @extend_schema_field(ConsentRecordSerializer(many=True))
    def get_consent_records(self, profile: Profile) -> list:
        return ConsentRecordSerializer(consent_records_for_profile(profile), many=True).data


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


class RecordWarningSerializer(serializers.Serializer):
    field = serializers.CharField()
    message = serializers.CharField()


class RecordResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    customer_id = serializers.CharField(allow_null=True)
    result = serializers.ChoiceField(choices=[CREATED, UPDATED, UNCHANGED, REJECTED])
    reason = serializers.CharField(allow_null=True, help_text=gettext_lazy("Why it was rejected."))
    warnings = RecordWarningSerializer(
        many=True,
        help_text=gettext_lazy(
            "What was kept with a warning, as the import report lists it: a name shortened to "
            "fit, an e-mail that does not look like an address (exports skip it)."
        ),
    )


class BulkResultSerializer(serializers.Serializer):
    """Counts by customer id, as the CSV import reports them; ``results`` has every record."""

    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = RecordResultSerializer(many=True)


class ProfileFilter(FilterSet):
    email = TextFilter(lookup_expr="iexact")

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
    }

    def get_queryset(self):
        return Profile.objects.order_by("id")

    def get_serializer_class(self):
        if self.action == "retrieve":
            return ProfileDetailSerializer
        return ProfileSerializer

    @extend_schema(request=BulkUpsertSerializer, responses=BulkResultSerializer, filters=False)
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def bulk(self, request):
        """Create or update up to 10,000 profiles by customer id, checked and stored exactly as
        the CSV import does; each record's result is created, updated, unchanged or rejected
        (with the reason)."""
        data = request.data
        records = data.get("records") if type(data) is dict else None
        if not (isinstance(records, list) and 1 <= len(records) <= MAX_RECORDS):
            # Only to word the error: checking 10,000 records one by one costs a third of a call.
            BulkUpsertSerializer(data=data).is_valid(raise_exception=True)
        # Held by this call alone, the records are freed when it ends, not when the cycle
        # collector gets to the request (which refers to itself) and goes through all of them.
        del data["records"]
        try:
            return Response(services.profiles_bulk_upsert(records=records))
        except ImportFileError as error:
            # The records would add more fields than the catalogue allows (PROFILE_FIELDS_MAX):
            # the call is refused as a whole, before anything is stored.
            raise serializers.ValidationError({"records": [str(error)]}) from error
