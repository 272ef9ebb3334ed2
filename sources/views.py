"""Admin > Sources. Administrators set up, test, preview and run sources; contributors and
viewers see the list with names and status only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from core import crypto
from core.permissions import permission_required
from sources import selectors, services
from sources.forms import SourceForm
from sources.kinds import registry
from sources.kinds.base import SourceError, StepStatus
from sources.models import Source, SourceRun
from sources.permissions import (
    ADD_SOURCE,
    CHANGE_SOURCE,
    DELETE_SOURCE,
    RUN_SOURCE,
    VIEW_SOURCE,
)

RUNS_PER_PAGE = 20
REJECTED_PER_PAGE = 100


def _source(source_id: int) -> Source:
    return get_object_or_404(Source, pk=source_id)


@permission_required(VIEW_SOURCE)
def source_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "sources/list.html",
        {
            "sources": selectors.source_list(),
            "kinds": [(kind, registry.label(kind)) for kind in registry.KINDS],
            "manages": CHANGE_SOURCE.allows(request.user),
        },
    )


@sensitive_post_parameters("password")
@permission_required(CHANGE_SOURCE)
def source_edit(
    request: HttpRequest, kind: str | None = None, source_id: int | None = None
) -> HttpResponse:
    """Add (``kind``) or change (``source_id``) a source. **Preview** reads the first rows and
    the columns' types with what is typed in, without saving; **Save** saves."""
    if source_id is not None:
        source: Source | None = _source(source_id)
        kind = source.kind
    else:
        if not ADD_SOURCE.allows(request.user):
            raise PermissionDenied(ADD_SOURCE.refusal)
        source = None
    if kind not in registry.KINDS:
        raise Http404("No such kind of source.")
    kind_class = registry.kind_class(kind)
    settings_form_class = registry.settings_form_class(kind)
    has_password = bool(source and source.encrypted_secrets)
    if request.method == "POST":
        form = SourceForm(request.POST, supports_tables=kind_class.supports_tables)
        settings_form = settings_form_class(request.POST, has_password=has_password)
    else:
        form = SourceForm(
            initial=SourceForm.initial_for(source) if source else None,
            supports_tables=kind_class.supports_tables,
        )
        settings_form = settings_form_class(
            initial=source.connection_settings if source else None, has_password=has_password
        )
    context: dict[str, Any] = {
        "source": source,
        "kind": kind,
        "kind_label": kind_class.label,
        "form": form,
        "settings_form": settings_form,
    }
    if request.method == "POST" and form.is_valid() and settings_form.is_valid():
        draft = _draft(source, kind, form, settings_form)
        password = settings_form.password()
        secrets = {"password": password} if password else None
        if secrets is None and source is not None:
            secrets = crypto.decrypt_json(source.encrypted_secrets)
        if request.POST.get("action") == "preview":
            try:
                context["columns"], context["rows"] = services.source_preview(
                    draft, secrets=secrets or {}
                )
            except SourceError as error:
                context["preview_error"] = str(error)
            return render(request, "sources/edit.html", context)
        field_types = _field_types(draft, secrets or {}, form)
        saved = services.source_save(
            source=source,
            name=form.cleaned_data["name"],
            kind=kind,
            connection_settings=settings_form.connection_settings(),
            password=password,
            read_table=form.cleaned_data.get("read_table", ""),
            read_query=form.cleaned_data["read_query"],
            mapping=form.mapping(),
            field_types=field_types,
            sync_mode=form.cleaned_data["sync_mode"],
            cursor_column=form.cleaned_data["cursor_column"],
            remove_missing=form.cleaned_data["remove_missing"],
            on_schedule=form.cleaned_data["on_schedule"],
            user=request.user,
        )
        messages.success(request, _("The source “%(name)s” is saved.") % {"name": saved.name})
        return redirect("sources:detail", saved.pk)
    return render(request, "sources/edit.html", context)


def _draft(source: Source | None, kind: str, form: SourceForm, settings_form) -> Source:
    """An unsaved source with what the form says, to preview or test."""
    return Source(
        kind=kind,
        name=form.cleaned_data["name"],
        connection_settings=settings_form.connection_settings(),
        encrypted_secrets=source.encrypted_secrets if source else "",
        read_table=form.cleaned_data.get("read_table", ""),
        read_query=form.cleaned_data["read_query"],
        mapping=form.mapping(),
        sync_mode=form.cleaned_data["sync_mode"],
        cursor_column=form.cleaned_data["cursor_column"],
    )


def _field_types(draft: Source, secrets: dict, form: SourceForm) -> dict[str, str]:
    """Each mapped field's type, from its column's type (empty when the source cannot be read
    now: the run takes the types from the columns it reads anyway)."""
    try:
        columns = {
            column.name: column for column in services.source_columns(draft, secrets=secrets)
        }
    except SourceError:
        return {}
    mapping = form.mapping()
    return {
        field: columns[column].field_type
        for field, column in (mapping.get("attributes") or {}).items()
        if column in columns
    }


@permission_required(CHANGE_SOURCE)
def source_detail(request: HttpRequest, source_id: int) -> HttpResponse:
    source = _source(source_id)
    runs = Paginator(selectors.run_list(source), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "sources/detail.html",
        {
            "source": source,
            "runs": runs,
            "active_run": selectors.run_list(source).filter(status__in=SourceRun.BLOCKING).first(),
        },
    )


@require_POST
@permission_required(CHANGE_SOURCE)
def source_test(request: HttpRequest, source_id: int) -> HttpResponse:
    source = _source(source_id)
    steps = services.source_test(source)
    return render(
        request,
        "sources/test.html",
        {"source": source, "steps": steps, "failed": StepStatus.FAILED},
    )


@require_POST
@permission_required(RUN_SOURCE)
def source_run(request: HttpRequest, source_id: int) -> HttpResponse:
    source = _source(source_id)
    try:
        services.run_request(source=source, user=request.user)
    except services.SourceAlreadyRunning as busy:
        messages.warning(request, str(busy.message))
    else:
        messages.success(request, _("The run is queued."))
    return redirect("sources:detail", source.pk)


@permission_required(CHANGE_SOURCE)
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(SourceRun.objects.select_related("source"), pk=run_id)
    rejected = Paginator(run.rejected_rows, REJECTED_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "sources/run.html", {"run": run, "rejected": rejected})


@require_POST
@permission_required(RUN_SOURCE)
def run_approve(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(SourceRun.objects.select_related("source"), pk=run_id)
    try:
        services.run_approve_removal(
            run=run, approve=request.POST.get("answer") == "remove", user=request.user
        )
    except services.RemovalNotAwaited:
        messages.warning(request, _("This run is no longer waiting for an answer."))
    return redirect("sources:run", run.pk)


@permission_required(DELETE_SOURCE)
def source_delete(request: HttpRequest, source_id: int) -> HttpResponse:
    source = _source(source_id)
    if request.method == "POST":
        services.source_delete(source=source)
        messages.success(request, _("The source “%(name)s” is removed.") % {"name": source.name})
        return redirect("sources:list")
    return render(request, "sources/delete.html", {"source": source})
