"""Exports (CRUD on connections the caller may use, run, cancel, preview, resend, schedule) and
their runs (live counts, percent and ETA, failures, retry failed records).

Validation is the pages' ``ExportForm``; every write is the ``exports.services`` function the
pages call.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.filtering import FilterSet, IdFilter, TextFilter
from api.forms import validated
from api.renderers import CsvRenderer
from config.translation import shown
from connections.types.base import BackendError, FieldType
from core.csv_stream import streaming_csv
from exports import guard, selectors, services
from exports.forms import GIVEN_FIELDS, ExportForm
from exports.mapping import MAX_ROWS, MAX_TAG_LENGTH, MAX_TAGS, default_rows, rows_of
from exports.models import Export, ExportRun, ExportRunFailure, FieldMapping
from exports.permissions import ADD_EXPORT, CHANGE_EXPORT, DELETE_EXPORT, RUN_EXPORT, VIEW_EXPORT


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The export cannot do this now.")


class RunSerializer(serializers.ModelSerializer):
    percent = serializers.SerializerMethodField()
    per_second = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()
    last_error = serializers.SerializerMethodField()
    list_size_after = serializers.SerializerMethodField()
    held_because = serializers.SerializerMethodField()

    class Meta:
        model = ExportRun
        fields = [
            "id",
            "export",
            "status",
            "trigger",
            "retry_of",
            "profiles_total",
            *ExportRun.COUNTS,
            "nothing_changed",
            "list_size",
            "to_add",
            "to_remove",
            "list_size_after",
            "held_because",
            "decided_by",
            "decided_at",
            "percent",
            "per_second",
            "eta_seconds",
            "cancel_requested",
            "last_error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def _progress(self, run: ExportRun) -> selectors.RunProgress:
        cache = self.context.setdefault("progress", {})
        if run.pk not in cache:
            cache[run.pk] = selectors.run_progress(run)
        return cache[run.pk]

    def get_percent(self, run: ExportRun) -> int:
        return self._progress(run).percent

    def get_per_second(self, run: ExportRun) -> float | None:
        """Profiles delivered per second since the run started."""
        return self._progress(run).per_second

    def get_eta_seconds(self, run: ExportRun) -> int | None:
        """While it runs: the seconds left at that rate."""
        return self._progress(run).eta_seconds

    def get_last_error(self, run: ExportRun) -> str:
        return shown(run.last_error)

    def get_list_size_after(self, run: ExportRun) -> int | None:
        """The destination list's size once the run has sent what it computed: list_size
        (what the list held before the run) + to_add - to_remove; null before it knows."""
        return run.list_size_after

    def get_held_because(self, run: ExportRun) -> list[str]:
        """Why the pre-flight guard stopped the run (awaiting approval), one reason each."""
        return guard.shown_reasons(run.held_because)


class MappingRowSerializer(serializers.Serializer):
    """One row of an export's field mapping: a profile field sent into a destination field."""

    profile_field = serializers.CharField(
        max_length=255, help_text=_("A profile field: built in, or a catalogued attribute.")
    )
    destination_key = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text=_(
            "The destination field's key as the service names it (email, first_name and "
            "last_name for its built-in fields). Not needed with create."
        ),
    )
    destination_name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    destination_type = serializers.ChoiceField(
        choices=[kind.value for kind in FieldType], required=False
    )
    when_empty = serializers.ChoiceField(
        choices=FieldMapping.WhenEmpty.choices, default=FieldMapping.WhenEmpty.LEAVE
    )
    create = serializers.BooleanField(
        default=False,
        write_only=True,
        help_text=_(
            "Create the destination field (destination_name, destination_type) at the service "
            "when the export is saved."
        ),
    )


class ExportSerializer(serializers.ModelSerializer):
    mapping = serializers.SerializerMethodField()
    last_status = serializers.SerializerMethodField()
    schedule_paused_reason = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id",
            *Export.SETTINGS_FIELDS,
            "mapping",
            "schedule_paused_reason",
            "resend_next_run",
            "last_status",
            "warnings",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(MappingRowSerializer(many=True))
    def get_mapping(self, export: Export) -> list[dict]:
        """The rows in order: what each person's profile fields are sent into."""
        return [row.as_dict() for row in rows_of(export)]

    def get_last_status(self, export: Export) -> str | None:
        """The status of the latest run, or null if it never ran."""
        if hasattr(export, "last_status"):  # annotated by selectors.exports_annotated
            return export.last_status
        latest = export.runs.order_by("-created_at", "-id").values_list("status", flat=True)
        return latest.first()

    def get_schedule_paused_reason(self, export: Export) -> str:
        return shown(export.schedule_paused_reason)

    def get_warnings(self, export: Export) -> list[str]:
        """After a save: what the page would show as warnings (list not checked, limits)."""
        return [str(warning) for warning in self.context.get("warnings", [])]


class ExportWriteSerializer(serializers.ModelSerializer):
    """The fields of **Add export** / **Edit**, checked by the same form."""

    display_name = serializers.CharField(max_length=200)
    connection = serializers.IntegerField(
        help_text=_("A connection you may use (see /connections/).")
    )
    list_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
    new_list_name = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text=_("Instead of list_id: the list of this name, created if the account has none."),
    )
    mapping = MappingRowSerializer(
        many=True,
        required=False,
        max_length=MAX_ROWS,
        help_text=_("Every row, the e-mail's among them; a new export maps the e-mail alone."),
    )
    fixed_tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH),
        max_length=MAX_TAGS,
        required=False,
        help_text=_("Tags every person sent gets (services with tags only)."),
    )
    tags_field = serializers.CharField(max_length=255, required=False, allow_blank=True)
    remove_tags_on_leave = serializers.BooleanField(required=False)
    new_subscriber_status = serializers.ChoiceField(
        choices=["", "subscribed", "pending"], required=False
    )
    consent_field = serializers.CharField(max_length=255, required=False, allow_blank=True)
    consent_default = serializers.ChoiceField(choices=Export.Consent.choices, required=False)
    segments = serializers.ListField(child=serializers.IntegerField(), min_length=1)
    schedule_enabled = serializers.BooleanField(default=True)
    sync_mode = serializers.ChoiceField(choices=Export.SyncMode.choices, default="add_update")

    class Meta:
        model = Export
        # Each declared above where the API takes it otherwise than the model field would.
        fields = GIVEN_FIELDS

    def form(self, user, export: Export | None) -> ExportForm:
        data: dict = {}
        if export is not None:  # PATCH: what is not sent stays as it is
            current = selectors.export_settings(export)
            data = {
                **current,
                "connection": export.connection_id,
                "segments": [segment.pk for segment in current["segments"]],
                "mapping": [row.as_dict() for row in rows_of(export)],
            }
        else:
            data = {"mapping": [row.as_dict() for row in default_rows()[:1]]}
        data.update(self.validated_data)
        data = {key: value for key, value in data.items() if value is not None}
        if isinstance(data.get("fixed_tags"), list):
            data["fixed_tags"] = ", ".join(data["fixed_tags"])
        if data.get("new_list_name"):
            data.pop("list_id", None)
        return ExportForm(data, user=user, export=export)


class ScheduleSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()


class CancelSerializer(serializers.Serializer):
    cancelled = serializers.BooleanField(help_text=_("False when the export was not running."))
    run = RunSerializer(allow_null=True)


class FailureSerializer(serializers.ModelSerializer):
    explanation = serializers.SerializerMethodField()
    reason = serializers.SerializerMethodField()

    class Meta:
        model = ExportRunFailure
        fields = ["id", "customer_id", "email", "code", "reason", "explanation", "skipped"]

    def get_reason(self, failure: ExportRunFailure) -> str:
        return selectors.failure_reason(failure.code, failure.reason, failure.skipped)

    def get_explanation(self, failure: ExportRunFailure) -> str:
        return selectors.failure_label(failure.code)


class ExportFilter(FilterSet):
    display_name = TextFilter(lookup_expr="icontains")
    # Ids, not choices: an id that names nothing lists nothing, as for any other value.
    connection = IdFilter(field_name="connection_id")
    segment = IdFilter(field_name="segments")

    class Meta:
        model = Export
        fields = ["display_name", "connection", "segment", "sync_mode", "schedule_enabled"]


@extend_schema_view(
    create=extend_schema(request=ExportWriteSerializer, responses={201: ExportSerializer}),
    update=extend_schema(request=ExportWriteSerializer, responses=ExportSerializer),
    partial_update=extend_schema(request=ExportWriteSerializer, responses=ExportSerializer),
)
class ExportViewSet(viewsets.ModelViewSet):
    serializer_class = ExportSerializer
    filterset_class = ExportFilter
    required_permissions = {
        "list": VIEW_EXPORT,
        "retrieve": VIEW_EXPORT,
        "preview": VIEW_EXPORT,
        "create": ADD_EXPORT,
        "update": CHANGE_EXPORT,
        "partial_update": CHANGE_EXPORT,
        "schedule": CHANGE_EXPORT,
        "destroy": DELETE_EXPORT,
        "run": RUN_EXPORT,
        "cancel": RUN_EXPORT,
        "resend": RUN_EXPORT,
    }

    def get_queryset(self):
        return selectors.exports_annotated().order_by("id")

    def object_refusal(self, user, export: Export) -> str | None:
        return selectors.export_write_refusal(user, export)

    def _save(self, request, export: Export | None, status_code: int) -> Response:
        writer = ExportWriteSerializer(data=request.data, partial=request.method == "PATCH")
        writer.is_valid(raise_exception=True)
        form = writer.form(request.user, export)
        validated(form)
        try:
            saved = services.export_save(export=export, user=request.user, **form.export_fields())
        except services.FieldNotCreated as error:
            raise serializers.ValidationError({"mapping": [str(error)]}) from None
        except BackendError as error:
            raise serializers.ValidationError({"new_list_name": [str(error.message)]}) from None
        warnings = []
        if form.list_unchecked:
            warnings.append(
                _(
                    "The List ID could not be checked with the service (%(reason)s). If it is "
                    "wrong, the run will say so."
                )
                % {"reason": form.list_unchecked}
            )
        if form.fields_unchecked:
            warnings.append(
                _(
                    "The mapped fields could not be checked with the service (%(reason)s). If "
                    "one is missing there, the run will say so before it sends anything."
                )
                % {"reason": form.fields_unchecked}
            )
        if limit := form.limit_warning():
            warnings.append(limit)
        body = ExportSerializer(saved, context={"warnings": warnings}).data
        return Response(body, status=status_code)

    def create(self, request, *args, **kwargs):
        return self._save(request, None, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        return self._save(request, self.get_object(), status.HTTP_200_OK)

    def perform_destroy(self, instance: Export) -> None:
        services.export_delete(export=instance)

    @extend_schema(request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        """**Run**: queue a run now. 409 when it is already running or has no connection."""
        export = self.get_object()
        try:
            run = services.export_run_now(export=export, user=request.user)
        except (services.ExportAlreadyRunning, services.ExportNotRunnable) as refusal:
            raise Conflict(str(refusal)) from None
        run.refresh_from_db()
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=CancelSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop the active run: at once if it has not started, else after the current batch."""
        run = services.export_cancel(export=self.get_object(), user=request.user)
        if run is not None:
            run.refresh_from_db()
        return Response(
            {"cancelled": run is not None, "run": RunSerializer(run).data if run else None}
        )

    @extend_schema(request=ScheduleSerializer, responses=ExportSerializer)
    @action(detail=True, methods=["post"])
    def schedule(self, request, pk=None):
        """Turn running with every scheduled refresh on or off."""
        choice = ScheduleSerializer(data=request.data)
        choice.is_valid(raise_exception=True)
        export = services.export_set_schedule(
            export=self.get_object(), enabled=choice.validated_data["enabled"]
        )
        return Response(ExportSerializer(export).data)

    @extend_schema(request=None, responses={202: ExportSerializer})
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        """**Resend everything**: the next run sends every member, changed or not."""
        export = self.get_object()
        services.export_request_resend(export=export)
        return Response(ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=OpenApiTypes.OBJECT, filters=False)
    @action(detail=True, methods=["get"], filterset_class=None)
    def preview(self, request, pk=None):
        """What the next run would add, update, remove and skip, with samples; sends nothing."""
        export = self.get_object()
        if not export.segments.exists():
            return Response({})
        return Response(services.export_preview(export=export))


SHOW_PARAMETER = OpenApiParameter(
    "show",
    str,
    enum=list(selectors.FAILURE_FILTERS),
    description=_(
        "One tab of the run page's failures: refused (by the service), skipped (by us), or one "
        "kind of skip. Leave it out for every failure."
    ),
)


def _failure_show(request) -> str:
    """The ``?show=`` filter, refused in words when it is not one the run page has."""
    show = request.query_params.get("show")
    if show is None or show == "":
        return ""
    if show not in selectors.FAILURE_FILTERS:
        raise serializers.ValidationError(
            {
                "show": [
                    _("Leave it out, or give one of: %(choices)s.")
                    % {"choices": ", ".join(selectors.FAILURE_FILTERS)}
                ]
            }
        )
    return show


class RunFilter(FilterSet):
    export = IdFilter(field_name="export_id")

    class Meta:
        model = ExportRun
        fields = ["export", "status", "trigger"]


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs, newest last in each page (cursor order); ``?export=ID`` for one export's runs."""

    serializer_class = RunSerializer
    filterset_class = RunFilter
    required_permissions = {
        "list": VIEW_EXPORT,
        "retrieve": VIEW_EXPORT,
        "failures": VIEW_EXPORT,
        "failures_csv": VIEW_EXPORT,
        "retry": RUN_EXPORT,
        "approve": RUN_EXPORT,
        "discard": RUN_EXPORT,
    }

    def get_queryset(self):
        return ExportRun.objects.select_related("export").order_by("id")

    def object_refusal(self, user, run: ExportRun) -> str | None:
        return selectors.export_write_refusal(user, run.export)

    @extend_schema(
        responses=FailureSerializer(many=True), filters=False, parameters=[SHOW_PARAMETER]
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def failures(self, request, pk=None):
        """Every profile the run did not deliver, and why; ``?show=`` for one of the run page's
        tabs (refused by the service, skipped by us, or one kind of skip)."""
        show = _failure_show(request)
        page = self.paginate_queryset(selectors.run_failures(self.get_object(), show))
        return self.get_paginated_response(FailureSerializer(page, many=True).data)

    @extend_schema(
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
        filters=False,
        parameters=[SHOW_PARAMETER],
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="failures.csv",
        renderer_classes=[JSONRenderer, CsvRenderer],
        filterset_class=None,
    )
    def failures_csv(self, request, pk=None):
        """The failures as CSV, streamed: the same file as the run page's **Download CSV**
        (``?show=`` as for ``failures``)."""
        show = _failure_show(request)
        return streaming_csv(*selectors.run_failures_table(self.get_object(), show))

    @extend_schema(request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """**Retry failed records**: a new run that sends only what the service refused."""
        run = self.get_object()
        try:
            retry = services.run_retry_failed(run=run, user=request.user)
        except (services.ExportAlreadyRunning, services.ExportNotRunnable) as refusal:
            raise Conflict(str(refusal)) from None
        retry.refresh_from_db()
        return Response(RunSerializer(retry).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """**Approve** a run awaiting approval: it is queued again and sends exactly what it
        computed. 409 when it does not await approval."""
        run = self.get_object()
        try:
            services.run_approve(run=run, user=request.user)
        except services.RunNotAwaitingApproval as refusal:
            raise Conflict(str(refusal)) from None
        run.refresh_from_db()
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        """**Discard** a run awaiting approval: it ends as discarded and sends nothing; the
        list stays as it is. 409 when it does not await approval."""
        run = self.get_object()
        try:
            services.run_discard(run=run, user=request.user)
        except services.RunNotAwaitingApproval as refusal:
            raise Conflict(str(refusal)) from None
        run.refresh_from_db()
        return Response(RunSerializer(run).data)
