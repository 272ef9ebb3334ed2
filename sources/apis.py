"""Sources: list and read (names and status for everyone who may see them, the rest for
administrators), add, change, remove, **Test connection**, run, and the runs with their row
reports. Validation is the pages' forms; every write is the ``sources.services`` function the
page calls. The password is write-only: no answer holds it."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from api.forms import validated
from api.pagination import NewestFirstPagination
from config.translation import shown
from sources import selectors, services
from sources.forms import SourceForm
from sources.kinds import registry
from sources.kinds.base import StepStatus
from sources.models import Source, SourceRun
from sources.permissions import (
    ADD_SOURCE,
    CHANGE_SOURCE,
    DELETE_SOURCE,
    RUN_SOURCE,
    VIEW_SOURCE,
)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("This source is already running.")


#: What contributors and viewers see of a source: its name and its status.
EVERYONE = ("id", "name", "status")


class SourceSerializer(serializers.ModelSerializer):
    # Name and status for everyone who may see sources; the rest for administrators.

    kind_label = serializers.CharField(read_only=True)
    has_password = serializers.SerializerMethodField()
    last_error = serializers.SerializerMethodField()

    class Meta:
        model = Source
        # Never encrypted_secrets: the password is write-only.
        fields = [
            "id",
            "name",
            "status",
            "kind",
            "kind_label",
            "connection_settings",
            "has_password",
            "read_table",
            "read_query",
            "mapping",
            "field_types",
            "sync_mode",
            "cursor_column",
            "cursor_value",
            "remove_missing",
            "on_schedule",
            "last_error",
            "last_run_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_password(self, source: Source) -> bool:
        return bool(source.encrypted_secrets)

    def get_last_error(self, source: Source) -> str:
        return shown(source.last_error)

    def to_representation(self, source: Source) -> dict:
        data = super().to_representation(source)
        request = self.context.get("request")
        if request is None or not CHANGE_SOURCE.allows(request.user):
            return {name: data[name] for name in EVERYONE}
        return data


class SourceSchema(OpenApiSerializerExtension):
    """The document says which fields only administrators get."""

    target_class = SourceSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["required"] = [name for name in schema["required"] if name in EVERYONE]
        for name, field in schema["properties"].items():
            if name not in EVERYONE:
                said = [_("Administrators only."), field.get("description", "")]
                field["description"] = "\n\n".join(part for part in said if part)
        return schema


class MappingSerializer(serializers.Serializer):
    customer_id = serializers.CharField(max_length=200)
    email = serializers.CharField(max_length=200, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    attributes = serializers.DictField(child=serializers.CharField(max_length=200), required=False)


class SourceWriteSerializer(serializers.Serializer):
    """Shapes the request for the page's forms, which do the checking."""

    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=list(registry.KINDS))
    connection_settings = serializers.DictField(
        help_text="host, port, database, user, sslmode / ssl_mode, sslrootcert / ssl_ca; "
        "for a file: path, file_format."
    )
    password = serializers.CharField(
        max_length=1000,
        required=False,
        write_only=True,
        help_text="Write-only. Left out, the stored password is kept.",
    )
    read_table = serializers.CharField(max_length=300, required=False, allow_blank=True)
    read_query = serializers.CharField(max_length=20_000, required=False, allow_blank=True)
    mapping = MappingSerializer()
    sync_mode = serializers.ChoiceField(choices=Source.SyncMode.choices, required=False)
    cursor_column = serializers.CharField(max_length=200, required=False, allow_blank=True)
    remove_missing = serializers.BooleanField(required=False)
    on_schedule = serializers.BooleanField(required=False)

    def cleaned(self, source: Source | None) -> dict[str, Any]:
        """The forms' cleaned data for the request (on top of the source, for PATCH)."""
        data = dict(self.validated_data)
        kind = source.kind if source is not None else data["kind"]
        current = SourceForm.initial_for(source) if source is not None else {}
        mapping = data.get("mapping")
        form_data = {
            **current,
            **{
                key: data[key]
                for key in (
                    "name",
                    "read_table",
                    "read_query",
                    "sync_mode",
                    "cursor_column",
                    "remove_missing",
                    "on_schedule",
                )
                if key in data
            },
        }
        form_data.setdefault("sync_mode", Source.SyncMode.FULL)
        form_data.setdefault("on_schedule", True)
        if mapping is not None:
            for name in ("customer_id", "email", "first_name", "last_name"):
                form_data[f"map_{name}"] = mapping.get(name, "")
            form_data["map_attributes"] = "\n".join(
                f"{field} = {column}" for field, column in mapping.get("attributes", {}).items()
            )
        for flag in ("remove_missing", "on_schedule"):
            if not form_data.get(flag):
                form_data.pop(flag, None)
        kind_class = registry.kind_class(kind)
        form = SourceForm(form_data, supports_tables=kind_class.supports_tables)
        cleaned = validated(form)
        settings_data = {
            **(source.connection_settings if source is not None else {}),
            **data.get("connection_settings", {}),
            "password": data.get("password", ""),
        }
        settings_form = registry.settings_form_class(kind)(settings_data)
        validated(settings_form)
        return {
            "name": cleaned["name"],
            "kind": kind,
            "connection_settings": settings_form.connection_settings(),
            "password": settings_form.password(),
            "read_table": cleaned.get("read_table", ""),
            "read_query": cleaned["read_query"],
            "mapping": form.mapping(),
            "sync_mode": cleaned["sync_mode"],
            "cursor_column": cleaned["cursor_column"],
            "remove_missing": cleaned["remove_missing"],
            "on_schedule": cleaned["on_schedule"],
        }


class SourceRunSerializer(serializers.ModelSerializer):
    error = serializers.SerializerMethodField()
    rejected_rows = serializers.SerializerMethodField()

    class Meta:
        model = SourceRun
        fields = [
            "id",
            "source",
            "status",
            "trigger",
            "sync_mode",
            "rows_read",
            "created_count",
            "updated_count",
            "unchanged_count",
            "rejected_count",
            "rejected_rows",
            "warning_count",
            "removed_count",
            "removal_pending",
            "cursor_start",
            "cursor_end",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_error(self, run: SourceRun) -> str:
        return shown(run.error)

    def get_rejected_rows(self, run: SourceRun) -> list[dict[str, Any]]:
        """Each rejected row (at most 10,000): its place in the reading, its customer id and
        why it was rejected."""
        return [
            {"line": row["line"], "key": row.get("key", ""), "reason": shown(row["reason"])}
            for row in run.rejected_rows
        ]


class SourceStepSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=[status.value for status in StepStatus])
    message = serializers.CharField()


class SourceTestSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    steps = SourceStepSerializer(many=True)


@extend_schema_view(
    create=extend_schema(request=SourceWriteSerializer, responses={201: SourceSerializer}),
    update=extend_schema(request=SourceWriteSerializer, responses=SourceSerializer),
    partial_update=extend_schema(request=SourceWriteSerializer, responses=SourceSerializer),
)
class SourceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Where profiles are read from: PostgreSQL, MySQL / MariaDB, Parquet or CSV files."""

    serializer_class = SourceSerializer
    required_permissions = {
        "list": VIEW_SOURCE,
        "retrieve": VIEW_SOURCE,
        "create": ADD_SOURCE,
        "update": CHANGE_SOURCE,
        "partial_update": CHANGE_SOURCE,
        "destroy": DELETE_SOURCE,
        "test": CHANGE_SOURCE,
        "run": RUN_SOURCE,
        "runs": CHANGE_SOURCE,
    }

    def get_queryset(self):
        return selectors.source_list().order_by("id")

    def create(self, request, *args, **kwargs):
        writer = SourceWriteSerializer(data=request.data)
        writer.is_valid(raise_exception=True)
        source = services.source_save(**writer.cleaned(None), user=request.user)
        return Response(
            SourceSerializer(source, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    def update(self, request, *args, **kwargs):
        source = self.get_object()
        partial = kwargs.get("partial", False)
        data = dict(request.data)
        data.setdefault("kind", source.kind)
        if partial:
            data.setdefault("name", source.name)
            data.setdefault("connection_settings", {})
            data.setdefault("mapping", source.mapping)
        writer = SourceWriteSerializer(data=data)
        writer.is_valid(raise_exception=True)
        cleaned = writer.cleaned(source)
        cleaned.pop("kind")
        services.source_save(source=source, kind=source.kind, **cleaned)
        return Response(SourceSerializer(source, context={"request": request}).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def perform_destroy(self, instance: Source) -> None:
        services.source_delete(source=instance)

    @extend_schema(request=None, responses=SourceTestSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Run the kind's named test steps (connect and sign in, read-only session, read what
        was chosen), as **Test connection** does."""
        steps = services.source_test(self.get_object())
        return Response(
            {
                "passed": all(step.status != StepStatus.FAILED for step in steps),
                "steps": [step.as_json() for step in steps],
            }
        )

    @extend_schema(request=None, responses={202: SourceRunSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        """Queue a run of the source; 409 when one is queued, running or waiting for approval
        to remove profiles (the detail says which)."""
        source = self.get_object()
        try:
            run = services.run_request(source=source, user=request.user)
        except services.SourceAlreadyRunning as busy:
            raise Conflict(str(busy.message)) from None
        return Response(SourceRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=SourceRunSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=NewestFirstPagination)
    def runs(self, request, pk=None):
        """The source's runs, newest first, each with its counts and rejected rows."""
        source = self.get_object()
        page = self.paginate_queryset(selectors.run_list(source))
        return self.get_paginated_response(SourceRunSerializer(page, many=True).data)
