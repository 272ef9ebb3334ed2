"""Admin > System: the **Schedule** and **Safety** tabs (administrators change them, everyone
else reads them) and the **Status** tab (segment refreshes and export runs)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from core.htmx import HtmxHttpRequest
from core.permissions import permission_required
from exports import selectors, services
from exports.forms import GuardDefaultsForm, ScheduleForm
from exports.models import Export, GuardDefaults, RefreshSchedule
from exports.permissions import CHANGE_GUARD_DEFAULTS, CHANGE_SCHEDULE, VIEW_STATUS
from exports.schedule import schedule_save
from segments.models import Segment

RECENT_RUNS = 10


@permission_required(VIEW_STATUS)
def system_schedule(request: HttpRequest) -> HttpResponse:
    schedule = RefreshSchedule.load()
    can_change = CHANGE_SCHEDULE.allows(request.user)
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied(CHANGE_SCHEDULE.refusal)
        if "add_time" in request.POST:
            form = ScheduleForm.with_another_time(request.POST)
        else:
            form = ScheduleForm(request.POST)
            if form.is_valid():
                schedule_save(**form.cleaned_data, user=request.user)
                messages.success(request, _("Schedule saved. It applies from now on."))
                return redirect("system:schedule")
    else:
        form = ScheduleForm.for_schedule(schedule)
    return render(
        request,
        "system/schedule.html",
        {
            "form": form,
            "schedule": schedule,
            "can_change": can_change,
            "tab": "schedule",
            "upcoming": selectors.next_refreshes(schedule, count=3),
        },
    )


@permission_required(VIEW_STATUS)
def system_safety(request: HttpRequest) -> HttpResponse:
    """**Safety**: when the pre-flight guard stops a run for approval, for every export that has
    no thresholds of its own. Administrators change them; everyone else reads them."""
    defaults = GuardDefaults.load()
    can_change = CHANGE_GUARD_DEFAULTS.allows(request.user)
    form = GuardDefaultsForm(request.POST or None, instance=defaults)
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied(CHANGE_GUARD_DEFAULTS.refusal)
        if form.is_valid():
            services.guard_defaults_save(**form.cleaned_data, user=request.user)
            messages.success(request, _("Safety thresholds saved. They apply to the next runs."))
            return redirect("system:safety")
    context = {"form": form, "defaults": defaults, "can_change": can_change, "tab": "safety"}
    return render(request, "system/safety.html", context)


@permission_required(VIEW_STATUS)
def system_status(request: HtmxHttpRequest) -> HttpResponse:
    context = {
        "rows": selectors.status_rows(),
        "active": selectors.status_active(),
        "tab": "status",
    }
    if request.htmx:
        return render(request, "system/status.html#status-table", context)
    return render(request, "system/status.html", context)


@permission_required(VIEW_STATUS)
def status_detail(request: HtmxHttpRequest, kind: str, pk: int) -> HttpResponse:
    """A click on a Status row: a segment's refresh, or an export's recent runs and the
    progress details of the latest."""
    if kind == selectors.TaskKind.SEGMENT:
        context: dict[str, Any] = {"segment": get_object_or_404(Segment, pk=pk)}
    elif kind == selectors.TaskKind.EXPORT:
        export = get_object_or_404(Export.objects.select_related("connection"), pk=pk)
        runs = selectors.export_runs(export, limit=RECENT_RUNS)
        context = {
            "export": export,
            "runs": runs,
            "progress": selectors.run_progress(runs[0]) if runs else None,
        }
    else:
        raise Http404("No such task.")
    context.update({"kind": kind, "pk": pk, "tab": "status"})
    if request.htmx:
        return render(request, "system/status_detail.html#detail", context)
    return render(request, "system/status_detail.html", context)
