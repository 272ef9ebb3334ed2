from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_POST

from core.csv_stream import streaming_csv
from core.listing import search_query
from core.permissions import permission_required
from segments import charts, membership, selectors, services
from segments.catalogue import field_label
from segments.dependencies import segments_using
from segments.forms import SegmentForm, parse_rules
from segments.models import ProfileField, Segment
from segments.permissions import CHANGE_SEGMENT, DELETE_SEGMENT, REFRESH_SEGMENT, VIEW_SEGMENT
from segments.rules import (
    CASE_OPERATORS,
    COMBINATIONS,
    CONSENT_CHOICES,
    CONSENT_OPERATORS,
    MATCHES,
    OPERATORS,
    OPERATORS_BY_TYPE,
    OPERATORS_WITHOUT_VALUE,
    RELATIVE_OPERATORS,
    SEGMENT_OPERATORS,
)
from segments.sentences import describe


@permission_required(VIEW_SEGMENT)
def segment_list(request: HttpRequest) -> HttpResponse:
    query = search_query(request.GET.get("q"))
    sort = selectors.SEGMENT_SORTING.parse(request.GET.get("sort"))
    segments = list(selectors.segment_search(query=query, sort=sort))
    sparklines = charts.sparklines(selectors.recent_member_counts([s.pk for s in segments]))
    for segment in segments:
        segment.sparkline = sparklines.get(segment.pk, "")
    refreshing = selectors.segments_refreshing()
    context = {"segments": segments, "refreshing": refreshing, "query": query, "sort": sort}
    if request.htmx:
        return render(request, "segments/list.html#table", context)
    return render(request, "segments/list.html", context)


@permission_required(CHANGE_SEGMENT)
def segment_edit(request: HttpRequest, segment_id: int | None = None) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id) if segment_id else None
    form = SegmentForm(request.POST or None, instance=segment)
    if request.method == "POST" and form.is_valid():
        segment = services.segment_save(
            segment=segment,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            rules=form.cleaned_data["rules"],
            user=request.user,
        )
        if "save_and_refresh" in request.POST:
            services.segment_request_refresh(segment=segment)
        messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
        return redirect("segments:detail", segment_id=segment.pk)
    builder = _builder_config(segment)
    return render(
        request, "segments/edit.html", {"form": form, "segment": segment, "builder": builder}
    )


def _builder_config(segment: Segment | None) -> dict:
    """What the rule builder's script needs: fields with their types, operators per type, the
    segments it may use, and its labels in the reader's language."""
    others = Segment.objects.exclude(pk=segment.pk) if segment else Segment.objects.all()
    return {
        "fields": [
            {**field, "label": field_label(field["name"])}
            for field in ProfileField.objects.values("name", "data_type", "profile_count")
        ],
        "types": {key: str(label) for key, label in ProfileField.DataType.choices},
        "operators": {key: str(label) for key, label in OPERATORS.items()},
        "operatorsByType": {
            **OPERATORS_BY_TYPE,
            "segment": SEGMENT_OPERATORS,
            "consent": CONSENT_OPERATORS,
        },
        "consent": {key: str(label) for key, label in CONSENT_CHOICES.items()},
        "relative": sorted(RELATIVE_OPERATORS),
        "caseOperators": sorted(CASE_OPERATORS),
        "withoutValue": sorted(OPERATORS_WITHOUT_VALUE),
        "matches": {key: str(label) for key, label in MATCHES.items()},
        "combinations": {key: str(label) for key, label in COMBINATIONS.items()},
        "segments": list(others.values("id", "name", "member_count")),
        "labels": {
            "definedBy": _("Members are"),
            "byConditions": _("Profiles that match conditions"),
            "addCondition": _("Add condition"),
            "addGroup": _("Add group"),
            "addSegment": _("Add segment"),
            "remove": _("Remove"),
            "field": _("Field"),
            "profileFields": _("Profile fields"),
            "segmentsGroup": _("Segments"),
            "consentGroup": _("Consent"),
            "consent": _("Consent"),
            "segment": _("Segment"),
            "firstSegment": _("Members of"),
            "exceptSegment": _("Except members of"),
            "operator": _("Comparison"),
            "value": _("Value"),
            "from": _("From"),
            "to": _("To"),
            "amount": _("Number"),
            "matchCase": _("Match case"),
            "match": _("Match"),
            "listHint": _("One value per line (up to 10,000)"),
            "noSegments": _("There are no other segments to use yet."),
            "and": pgettext("between two conditions", "and"),
            "or": pgettext("between two conditions", "or"),
            "unfinished": _("Give each condition a value to see how many profiles match."),
        },
    }


@require_POST
@permission_required(CHANGE_SEGMENT)
def segment_estimate(request: HttpRequest) -> HttpResponse:
    """The live size estimate shown in the builder while the rules change."""
    context: dict = {}
    try:
        rules = parse_rules(request.POST.get("rules", ""))
    except ValidationError as error:
        context["error"] = " ".join(error.messages)
    else:
        context["estimate"] = estimate = membership.estimate_size(rules)
        context["profile_total"] = total = selectors.profile_count()
        context["percent"] = share_in_percent(estimate, total)
    return render(request, "segments/edit.html#estimate", context)


def share_in_percent(part: int, total: int) -> str:
    """``part`` as a percentage of ``total`` for people: one decimal at most ("0.3", "12.5",
    "100"), and "<0.1" for a share too small to show as one."""
    if not part or not total:
        return floatformat(0)
    share = 100 * part / total
    if share < 0.05:
        return "<" + floatformat(0.1, 1)
    return floatformat(share, -1)


@permission_required(VIEW_SEGMENT)
def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    history = selectors.segment_history(segment)
    context = {
        "segment": segment,
        "preview": selectors.segment_preview(segment),
        "rules": describe(segment.rules, selectors.segment_names(), selectors.field_types()),
        "exports": selectors.exports_including(segment),
        "used_by": segments_using(segment),
        "history": history,
        "chart": charts.history_chart(history),
    }
    if request.htmx:
        return render(request, "segments/detail.html#summary", context)
    return render(request, "segments/detail.html", context)


@require_POST
@permission_required(CHANGE_SEGMENT)
def segment_set_active(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    active = request.POST.get("active") == "1"
    services.segment_set_active(segment=segment, active=active)
    if active:
        messages.success(request, _("“%(name)s” is active again.") % {"name": segment.name})
    else:
        messages.success(
            request,
            _("“%(name)s” is inactive: it is not refreshed and exports that use it are skipped.")
            % {"name": segment.name},
        )
    return redirect(segment)


@require_POST
@permission_required(CHANGE_SEGMENT)
def segment_set_static(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    static = request.POST.get("static") == "1"
    services.segment_set_static(segment=segment, static=static)
    if static:
        messages.success(
            request,
            _("“%(name)s” is static: its %(count)s members stay as they are.")
            % {"name": segment.name, "count": f"{segment.member_count:,}"},
        )
    else:
        messages.success(
            request,
            _("“%(name)s” is dynamic again: refreshes follow its rules.") % {"name": segment.name},
        )
    return redirect(segment)


@require_POST
@permission_required(REFRESH_SEGMENT)
def segment_refresh(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    if not segment.is_active:
        messages.info(
            request,
            _("“%(name)s” is inactive. Activate it to refresh it.") % {"name": segment.name},
        )
    elif segment.is_static:
        messages.info(
            request,
            _("“%(name)s” is static. Make it dynamic to refresh it.") % {"name": segment.name},
        )
    elif services.segment_request_refresh(segment=segment):
        messages.info(request, _("Refreshing “%(name)s”.") % {"name": segment.name})
    else:
        messages.info(request, _("“%(name)s” is already being refreshed.") % {"name": segment.name})
    if request.POST.get("next") == "detail":
        return redirect(segment)
    return redirect("segments:list")


@require_POST
@permission_required(REFRESH_SEGMENT)
def segment_refresh_all(request: HttpRequest) -> HttpResponse:
    count = services.segment_request_refresh_all()
    messages.info(request, _("Refreshing %(count)d segments.") % {"count": count})
    return redirect("segments:list")


@permission_required(DELETE_SEGMENT)
def segment_delete(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    used_by = segments_using(segment)
    if request.method == "POST" and not used_by:
        services.segment_delete(segment=segment)
        messages.success(request, _("Segment “%(name)s” removed.") % {"name": segment.name})
        return redirect("segments:list")
    return render(
        request,
        "segments/delete.html",
        {"segment": segment, "used_by": used_by, "exports": segment.exports.order_by("pk")},
    )


@permission_required(VIEW_SEGMENT)
def segment_members(request: HttpRequest, segment_id: int) -> HttpResponse:
    """Every member, a page at a time, found by the start of a customer id or an e-mail."""
    segment = get_object_or_404(Segment, pk=segment_id)
    query = request.GET.get("q", "").strip()[:200]
    after = request.GET.get("after", "")
    members, next_after = selectors.segment_members_page(
        segment, query=query, after_id=int(after) if after.isdigit() else 0
    )
    return render(
        request,
        "segments/members.html",
        {"segment": segment, "members": members, "query": query, "next_after": next_after},
    )


@permission_required(VIEW_SEGMENT)
def segment_members_csv(request: HttpRequest, segment_id: int) -> StreamingHttpResponse:
    """Every member as CSV, streamed page by page (memory does not grow with the segment)."""
    segment = get_object_or_404(Segment, pk=segment_id)
    return streaming_csv(*selectors.segment_members_table(segment))
