"""Data > Exports: the list, **Add export** / **Edit**, the export's page with **Progress
details** and run history, a run's failures, and the row actions.

Viewers see every page read-only. Contributors change, run and remove only the exports whose
connection is shared with them (or that have none); the role is checked by the decorator and
the connection by ``_export_for_writing``.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from connections import services as connection_services
from connections.selectors import connections_usable_by
from connections.types.base import BackendError
from core.csv_stream import streaming_csv
from core.htmx import HtmxHttpRequest
from core.listing import search_query
from core.permissions import permission_required
from exports import destinations, limits, selectors, services
from exports.forms import ROW_INPUTS, ExportForm
from exports.models import Export, ExportRun, GuardDefaults
from exports.permissions import ADD_EXPORT, CHANGE_EXPORT, DELETE_EXPORT, RUN_EXPORT, VIEW_EXPORT

logger = logging.getLogger(__name__)

FAILURES_PER_PAGE = 100


def _export(export_id: int) -> Export:
    return get_object_or_404(
        Export.objects.select_related("connection").prefetch_related("segments"), pk=export_id
    )


def _export_for_writing(request: HttpRequest, export_id: int) -> Export:
    export = _export(export_id)
    if refusal := selectors.export_write_refusal(request.user, export):
        raise PermissionDenied(refusal)
    return export


def _back(request: HttpRequest, export: Export) -> HttpResponse:
    """After a row action: back to the list, or to the export's page when it came from there."""
    if request.POST.get("next") == "detail":
        return redirect(export)
    return redirect("exports:list")


@permission_required(VIEW_EXPORT)
def export_list(request: HttpRequest) -> HttpResponse:
    query = search_query(request.GET.get("q"))
    sort = selectors.EXPORT_SORTING.parse(request.GET.get("sort"))
    exports = selectors.export_list(user=request.user, query=query, sort=sort)
    context = {"exports": exports, "query": query, "sort": sort}
    return render(request, "exports/list.html", context)


@permission_required(ADD_EXPORT)
def export_create(request: HttpRequest) -> HttpResponse:
    return _export_form(request, None)


@permission_required(CHANGE_EXPORT)
def export_edit(request: HttpRequest, export_id: int) -> HttpResponse:
    return _export_form(request, _export_for_writing(request, export_id))


def _export_form(request: HttpRequest, export: Export | None) -> HttpResponse:
    if request.method == "POST" and ("add_row" in request.POST or "remove_row" in request.POST):
        # **Add a field** / **Remove**: the page again with one row more or less, unsaved.
        form = ExportForm.unjudged(_rows_changed(request.POST), user=request.user, export=export)
        return _render_export_form(request, form, export)
    form = ExportForm(request.POST or None, user=request.user, export=export)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.export_save(export=export, user=request.user, **form.export_fields())
        except services.FieldNotCreated as error:
            form.add_error("mapping", str(error))
            return _render_export_form(request, form, export)
        except BackendError as error:
            form.add_error(
                "new_list_name",
                _("%(service)s did not create the list: %(reason)s")
                % {"service": form.cleaned_data["connection"].kind_label, "reason": error.message},
            )
            return _render_export_form(request, form, export)
        return _saved(request, form, saved)
    return _render_export_form(request, form, export)


def _rows_changed(data):
    """The posted form with an empty mapping row added, or the row asked removed."""
    data = data.copy()
    names = [f"mapping-{part}" for part in ROW_INPUTS]
    if "add_row" in data:
        for name in names:
            data.setlist(name, [*data.getlist(name), ""])
        return data
    index = data.get("remove_row", "")
    if index.isdigit():
        for name in names:
            values = data.getlist(name)
            data.setlist(name, values[: int(index)] + values[int(index) + 1 :])
    return data


def _saved(request: HttpRequest, form: ExportForm, export: Export) -> HttpResponse:
    if form.cleaned_data["new_list_name"]:
        messages.info(
            request,
            _("The export sends to the list “%(list)s” (ID %(id)s) in %(service)s.")
            % {
                "list": export.list_name,
                "id": export.list_id,
                "service": export.connection.kind_label if export.connection else "",
            },
        )
    messages.success(
        request,
        _("Export “%(name)s” saved. Saving does not run it: select Run to send it now.")
        % {"name": export.display_name},
    )
    if form.list_unchecked:
        messages.warning(
            request,
            _(
                "The List ID could not be checked with the service (%(reason)s). If it is "
                "wrong, the run will say so."
            )
            % {"reason": form.list_unchecked},
        )
    if form.fields_unchecked:
        messages.warning(
            request,
            _(
                "The mapped fields could not be checked with the service (%(reason)s). If one "
                "is missing there, the run will say so before it sends anything."
            )
            % {"reason": form.fields_unchecked},
        )
    warning = form.limit_warning()
    if warning:
        messages.warning(request, warning)
    return redirect(export)


def _render_export_form(
    request: HttpRequest, form: ExportForm, export: Export | None
) -> HttpResponse:
    if request.method == "POST" and form.destination_fields is None:
        # The fields Load fields offered stay offered (Add a field, Remove, a refusal).
        form.keep_loaded_fields(request.POST.get("loaded_fields", ""))
    return render(
        request,
        "exports/edit.html",
        {
            "form": form,
            "export": export,
            "limits": limits.limits_by_kind(),
            "guard_defaults": GuardDefaults.load(),
        },
    )


@permission_required(ADD_EXPORT)
def destination_lists(request: HttpRequest) -> HttpResponse:
    """**Load lists**: the lists of the chosen connection's account, as options to pick from."""
    connection_id = request.GET.get("connection", "")
    connection = (
        connections_usable_by(request.user).filter(pk=connection_id).first()
        if connection_id.isdigit()
        else None
    )
    context: dict = {"current": request.GET.get("list_id", "").strip()}
    if connection is None:
        context["error"] = _("Choose a connection first, then load its lists.")
    else:
        context["connection"] = connection
        try:
            context["lists"] = connection_services.destination_lists(connection)
        except BackendError as error:
            context["error"] = _("%(service)s did not return the lists: %(reason)s") % {
                "service": connection.kind_label,
                "reason": error.message,
            }
        except Exception:  # never a stack trace on the page
            logger.exception("Listing the lists of connection %s failed", connection.pk)
            context["error"] = _(
                "%(service)s did not answer as expected. Try again, or type the List ID."
            ) % {"service": connection.kind_label}
    return render(request, "exports/edit.html#list-picker", context)


@require_POST
@permission_required(ADD_EXPORT)
def destination_fields(request: HttpRequest) -> HttpResponse:
    """**Load fields**: the mapping rows as typed, each offering the fields of the chosen
    list with their types (and the types a new field can have there)."""
    form = ExportForm.unjudged(request.POST, user=request.user, export=None)
    connection_id = request.POST.get("connection", "")
    connection = (
        connections_usable_by(request.user).filter(pk=connection_id).first()
        if connection_id.isdigit()
        else None
    )
    list_id = request.POST.get("list_id", "").strip()
    context: dict = {
        "form": form,
        "groups": form.connection_groups(),
        "selected_kind": form.selected_kind(),
    }
    if connection is None:
        context["fields_error"] = _("Choose a connection first, then load the list's fields.")
    elif not list_id:
        context["fields_error"] = _("Give the List ID first, then load its fields.")
    else:
        try:
            form.destination_fields = destinations.destination_fields(connection, list_id)
        except destinations.FieldsUnavailable as error:
            context["fields_error"] = _("%(service)s did not return the fields: %(reason)s") % {
                "service": connection.kind_label,
                "reason": error.reason,
            }
        else:
            context["fields_loaded_from"] = connection
    return render(request, "exports/edit.html#mapping", context)


@permission_required(VIEW_EXPORT)
def export_detail(request: HtmxHttpRequest, export_id: int) -> HttpResponse:
    export = _export(export_id)
    runs = selectors.export_runs(export)
    # A run awaiting approval holds the export, whatever was recorded after it.
    latest = selectors.run_awaiting_approval(export) or (runs[0] if runs else None)
    user = request.user
    can_write = CHANGE_EXPORT.allows(user) and selectors.export_writable_by(user, export)
    context = {
        "export": export,
        "runs": runs,
        "latest": latest,
        "progress": selectors.run_progress(latest) if latest else None,
        "can_write": can_write,
        "can_run": can_write and RUN_EXPORT.allows(user),
        "can_remove": can_write and DELETE_EXPORT.allows(user),
        "can_duplicate": can_write and ADD_EXPORT.allows(user),
        "limit": limits.max_profiles(export.connection.kind) if export.connection else None,
    }
    if request.htmx:
        return render(request, "exports/detail.html#live", context)
    return render(request, "exports/detail.html", context)


@require_POST
@permission_required(RUN_EXPORT)
def export_run(request: HttpRequest, export_id: int) -> HttpResponse:
    export = _export_for_writing(request, export_id)
    try:
        services.export_run_now(export=export, user=request.user)
    except (services.ExportAlreadyRunning, services.ExportNotRunnable) as refusal:
        messages.error(request, str(refusal))
    else:
        if request.POST.get("next") != "detail":
            # The export's page says so itself, from the run, for as long as it is true: a
            # message there would still say "queued" after the run had finished.
            messages.success(
                request, _("“%(name)s” is queued to run.") % {"name": export.display_name}
            )
    return _back(request, export)


@require_http_methods(["GET", "POST"])
@permission_required(RUN_EXPORT)
def export_run_all(request: HttpRequest) -> HttpResponse:
    """GET asks first, naming the exports it runs and those it leaves because a run of theirs
    awaits approval; POST runs them."""
    if request.method == "GET":
        items = selectors.exports_to_run_all(request.user)
        context = {
            "exports": [item.export for item in items if item.waiting_run_id is None],
            "waiting": [item for item in items if item.waiting_run_id is not None],
        }
        return render(request, "exports/run_all.html", context)
    queued, already_running, waiting = services.exports_run_all(user=request.user)
    if queued:
        messages.success(
            request,
            ngettext(
                "Queued %(count)d export with a schedule to run.",
                "Queued %(count)d exports with a schedule to run.",
                len(queued),
            )
            % {"count": len(queued)},
        )
    if already_running:
        messages.info(
            request,
            _("Already running, so not queued again: %(names)s.")
            % {"names": ", ".join(export.display_name for export in already_running)},
        )
    if waiting:
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (
                    reverse("exports:run_detail", args=[item.waiting_run_id]),
                    _("%(name)s (run #%(run)s)")
                    % {"name": item.export.display_name, "run": item.waiting_run_id},
                )
                for item in waiting
            ),
        )
        # The runs are links: the sentence around them is escaped, they are not.
        before, _runs, after = _("Waiting for approval, so not queued: %(runs)s.").partition(
            "%(runs)s"
        )
        messages.warning(request, format_html("{}{}{}", before, links, after))
    if not queued and not already_running and not waiting:
        messages.info(
            request,
            _("No export with a schedule is ready to run. Turn on Schedule for an export first."),
        )
    return redirect("exports:list")


@require_POST
@permission_required(RUN_EXPORT)
def export_cancel(request: HttpRequest, export_id: int) -> HttpResponse:
    export = _export_for_writing(request, export_id)
    run = services.export_cancel(export=export, user=request.user)
    if run is None:
        messages.info(request, _("“%(name)s” is not running.") % {"name": export.display_name})
    elif run.status == ExportRun.Status.DISCARDED:
        messages.success(request, _("The run awaiting approval was discarded: it sent nothing."))
    elif run.status == ExportRun.Status.CANCELLED:
        messages.success(request, _("The run was cancelled before it started."))
    else:
        messages.success(request, _("The run stops after the batch it is sending now."))
    return _back(request, export)


@require_POST
@permission_required(ADD_EXPORT)
def export_duplicate(request: HttpRequest, export_id: int) -> HttpResponse:
    export = _export_for_writing(request, export_id)
    copy = services.export_duplicate(export=export, user=request.user)
    messages.success(
        request,
        _("Created “%(name)s”. Its schedule is off: change what you need, then save.")
        % {"name": copy.display_name},
    )
    return redirect("exports:edit", export_id=copy.pk)


@require_POST
@permission_required(CHANGE_EXPORT)
def export_schedule(request: HttpRequest, export_id: int) -> HttpResponse:
    export = _export_for_writing(request, export_id)
    enabled = request.POST.get("enabled") == "1"
    services.export_set_schedule(export=export, enabled=enabled)
    if enabled:
        message = _("“%(name)s” now runs with every scheduled refresh.")
    else:
        message = _("“%(name)s” no longer runs on the schedule; Run still works.")
    messages.success(request, message % {"name": export.display_name})
    return _back(request, export)


@require_POST
@permission_required(CHANGE_EXPORT)
def export_detach(request: HttpRequest, export_id: int) -> HttpResponse:
    export = _export_for_writing(request, export_id)
    services.export_detach(export=export)
    messages.success(
        request,
        _(
            "“%(name)s” is detached: it keeps its settings but cannot run until you edit it and "
            "choose a connection."
        )
        % {"name": export.display_name},
    )
    return _back(request, export)


@permission_required(DELETE_EXPORT)
def export_delete(request: HttpRequest, export_id: int) -> HttpResponse:
    export = _export_for_writing(request, export_id)
    if request.method == "POST":
        services.export_delete(export=export)
        messages.success(request, _("Export “%(name)s” removed.") % {"name": export.display_name})
        return redirect("exports:list")
    return render(request, "exports/delete.html", {"export": export})


@permission_required(VIEW_EXPORT)
def run_detail(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(
        ExportRun.objects.select_related("export", "triggered_by", "retry_of"), pk=run_id
    )
    context = {
        "run": run,
        "export": run.export,
        "progress": selectors.run_progress(run),
        "guard": selectors.run_guard(run),
        "can_run": RUN_EXPORT.allows(request.user)
        and selectors.export_writable_by(request.user, run.export),
    }
    if request.htmx:
        return render(request, "exports/run.html#run-progress", context)
    show = selectors.failure_filter(request.GET.get("show"))
    page = Paginator(selectors.run_failures(run, show), FAILURES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    filters = selectors.run_failure_filters(run)
    return render(
        request, "exports/run.html", {**context, "page": page, "show": show, "filters": filters}
    )


@permission_required(VIEW_EXPORT)
def run_failures_csv(request: HttpRequest, run_id: int) -> StreamingHttpResponse:
    """**Download CSV**: every failed or skipped profile of the run (or those of the filter
    shown, ``?show=``), streamed."""
    run = get_object_or_404(ExportRun, pk=run_id)
    show = selectors.failure_filter(request.GET.get("show"))
    return streaming_csv(*selectors.run_failures_table(run, show))


@permission_required(VIEW_EXPORT)
def export_preview(request: HttpRequest, export_id: int) -> HttpResponse:
    """**Preview**: what the next run would do, computed without calling the service."""
    export = _export(export_id)
    preview = services.export_preview(export=export) if export.segments.exists() else None
    return render(request, "exports/preview.html", {"export": export, "preview": preview})


@require_POST
@permission_required(RUN_EXPORT)
def export_resend(request: HttpRequest, export_id: int) -> HttpResponse:
    export = _export_for_writing(request, export_id)
    services.export_request_resend(export=export)
    messages.success(request, _("The next run sends every member again, changed or not."))
    return redirect(export)


@require_POST
@permission_required(RUN_EXPORT)
def run_retry(request: HttpRequest, run_id: int) -> HttpResponse:
    """**Retry failed records** of a run."""
    run = get_object_or_404(ExportRun.objects.select_related("export"), pk=run_id)
    _export_for_writing(request, run.export_id)
    try:
        services.run_retry_failed(run=run, user=request.user)
    except (services.ExportAlreadyRunning, services.ExportNotRunnable) as refusal:
        messages.error(request, str(refusal))
        return redirect("exports:run_detail", run_id=run.pk)
    return redirect(run.export)  # whose page says the retry is queued while it is


@require_POST
@permission_required(RUN_EXPORT)
def run_approve(request: HttpRequest, run_id: int) -> HttpResponse:
    """**Approve** a run awaiting approval: it is queued again and sends what it computed."""
    return _decide(
        request,
        run_id,
        services.run_approve,
        _("Run #%(run)s is approved: it is queued and sends what it computed."),
    )


@require_POST
@permission_required(RUN_EXPORT)
def run_discard(request: HttpRequest, run_id: int) -> HttpResponse:
    """**Discard** a run awaiting approval: it ends and sends nothing."""
    return _decide(
        request,
        run_id,
        services.run_discard,
        _("Run #%(run)s is discarded: it sent nothing, and the list is as it was."),
    )


def _decide(request: HttpRequest, run_id: int, decide, done: str) -> HttpResponse:
    """Approve or discard (``decide``) a run awaiting approval, and say what happened."""
    run = get_object_or_404(ExportRun.objects.select_related("export"), pk=run_id)
    _export_for_writing(request, run.export_id)
    try:
        decide(run=run, user=request.user)
    except services.RunNotAwaitingApproval as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, done % {"run": run.pk})
    return redirect("exports:run_detail", run_id=run.pk)
