"""Segments: CRUD with the builder's rule JSON and validation (``segments.forms.SegmentForm``),
estimate, refresh (queued; poll the segment's ``refresh_state``), members (paginated, and CSV)."""

from __future__ import annotations

import json

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.filtering import FilterSet, TextFilter
from api.forms import validated
from api.renderers import CsvRenderer
from config.translation import shown
from core.csv_stream import streaming_csv
from segments import membership, selectors, services
from segments.forms import SegmentForm, parse_rules
from segments.models import Profile, ProfileField, Segment
from segments.permissions import (
    ADD_SEGMENT,
    CHANGE_SEGMENT,
    DELETE_SEGMENT,
    REFRESH_SEGMENT,
    VIEW_SEGMENT,
)
from segments.rule_schema import RulesField
from segments.rules import OPERATORS_BY_TYPE


class SegmentSerializer(serializers.ModelSerializer):
    rules = RulesField()
    last_error = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "rules",
            "status",
            "refresh_state",
            "member_count",
            "last_refreshed_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [name for name in fields if name not in ("name", "description")]

    def get_last_error(self, segment: Segment) -> str:
        return shown(segment.last_error)


class SegmentWriteSerializer(serializers.Serializer):
    """Checked by the builder's form: the same messages, the same rules."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    rules = RulesField()

    def validate(self, attrs: dict) -> dict:
        instance = self.instance
        current = (
            {"name": instance.name, "description": instance.description, "rules": instance.rules}
            if instance
            else {}
        )
        data = {"description": "", **current, **attrs}
        data["rules"] = json.dumps(data.get("rules"))
        return validated(SegmentForm(data, instance=instance))


class RulesSerializer(serializers.Serializer):
    rules = RulesField()

    def validate_rules(self, rules) -> dict:
        from django.core.exceptions import ValidationError

        try:
            return parse_rules(json.dumps(rules))
        except ValidationError as error:
            raise serializers.ValidationError(error.messages) from None


class EstimateSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text=_("How many profiles the rules match now."))


class RefreshSerializer(serializers.Serializer):
    queued = serializers.BooleanField(
        help_text=_("False when a refresh was already queued or running.")
    )
    segment = SegmentSerializer(help_text=_("Poll the segment until refresh_state is idle."))


class MemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = Profile
        fields = ["id", "customer_id", "email", "first_name", "last_name", "attributes"]


class SegmentFilter(FilterSet):
    name = TextFilter(lookup_expr="icontains")

    class Meta:
        model = Segment
        fields = ["name", "status", "refresh_state"]


@extend_schema_view(
    create=extend_schema(request=SegmentWriteSerializer, responses={201: SegmentSerializer}),
    update=extend_schema(request=SegmentWriteSerializer, responses=SegmentSerializer),
    partial_update=extend_schema(request=SegmentWriteSerializer, responses=SegmentSerializer),
)
class SegmentViewSet(viewsets.ModelViewSet):
    queryset = Segment.objects.all()
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilter
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    required_permissions = {
        "list": VIEW_SEGMENT,
        "retrieve": VIEW_SEGMENT,
        "members": VIEW_SEGMENT,
        "members_csv": VIEW_SEGMENT,
        "create": ADD_SEGMENT,
        "update": CHANGE_SEGMENT,
        "partial_update": CHANGE_SEGMENT,
        "estimate": CHANGE_SEGMENT,
        "destroy": DELETE_SEGMENT,
        "refresh": REFRESH_SEGMENT,
    }

    def get_queryset(self):
        return Segment.objects.order_by("id")

    def _save(self, request, segment: Segment | None, status_code: int) -> Response:
        writer = SegmentWriteSerializer(
            segment, data=request.data, partial=segment is not None and request.method == "PATCH"
        )
        writer.is_valid(raise_exception=True)
        data = writer.validated_data
        saved = services.segment_save(
            segment=segment,
            name=data["name"],
            description=data["description"],
            rules=data["rules"],
            user=request.user,
        )
        return Response(SegmentSerializer(saved).data, status=status_code)

    def create(self, request, *args, **kwargs):
        return self._save(request, None, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        return self._save(request, self.get_object(), status.HTTP_200_OK)

    def perform_destroy(self, instance: Segment) -> None:
        services.segment_delete(segment=instance)

    @extend_schema(request=RulesSerializer, responses=EstimateSerializer)
    @action(detail=False, methods=["post"])
    def estimate(self, request):
        """How many profiles these rules match right now (nothing is saved)."""
        rules = RulesSerializer(data=request.data)
        rules.is_valid(raise_exception=True)
        return Response({"count": membership.estimate_size(rules.validated_data["rules"])})

    @extend_schema(request=None, responses={202: RefreshSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Queue a refresh of the members; poll the segment until ``refresh_state`` is idle."""
        segment = self.get_object()
        queued = services.segment_request_refresh(segment=segment)
        segment.refresh_from_db()
        return Response(
            {"queued": queued, "segment": SegmentSerializer(segment).data},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(responses=MemberSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], filterset_class=None)
    def members(self, request, pk=None):
        page = self.paginate_queryset(selectors.segment_members(self.get_object()))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)}, filters=False)
    @action(
        detail=True,
        methods=["get"],
        url_path="members.csv",
        renderer_classes=[JSONRenderer, CsvRenderer],
        filterset_class=None,
    )
    def members_csv(self, request, pk=None):
        """Every member as CSV, streamed: the same file as the segment page's download."""
        return streaming_csv(*selectors.segment_members_table(self.get_object()))


class ProfileFieldSerializer(serializers.ModelSerializer):
    type = serializers.ChoiceField(source="data_type", choices=ProfileField.DataType.choices)
    operators = serializers.SerializerMethodField(
        help_text=_("The rule operators this field offers, as the builder offers them.")
    )

    class Meta:
        model = ProfileField
        fields = ["name", "type", "is_builtin", "profile_count", "operators", "updated_at"]
        read_only_fields = fields

    def get_operators(self, field: ProfileField) -> list[str]:
        return list(OPERATORS_BY_TYPE.get(field.data_type, ()))


class ProfileFieldViewSet(viewsets.ReadOnlyModelViewSet):
    """The field catalogue the rules compare: the built-in fields and every imported
    attribute, with its type (inferred on import) and operators."""

    serializer_class = ProfileFieldSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    filterset_class = None
    required_permissions = {
        "list": VIEW_SEGMENT,
        "retrieve": VIEW_SEGMENT,
    }

    def get_queryset(self):
        return ProfileField.objects.order_by("id")
