"""Admin > Audit log: administrators read who changed what, and download it as CSV."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from audit import selectors
from audit.forms import AuditFilterForm
from audit.permissions import VIEW_AUDIT_ENTRY
from core.csv_stream import streaming_csv
from core.permissions import permission_required

#: A cursor is an id and a value of at most 255 characters (``audit_page``).
MAX_CURSOR_LENGTH = 300


def _filtered(request: HttpRequest) -> tuple[AuditFilterForm, object]:
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    filters = {name: value for name, value in filters.items() if value}
    return form, selectors.audit_entries(**filters)


@permission_required(VIEW_AUDIT_ENTRY)
def audit_list(request: HttpRequest) -> HttpResponse:
    form, entries = _filtered(request)
    sort = selectors.AUDIT_SORTING.parse(request.GET.get("sort"))
    cursor = request.GET.get("before", "")[:MAX_CURSOR_LENGTH]
    page, next_before = selectors.audit_page(entries, cursor=cursor, sort=sort)
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "form": form,
        "entries": page,
        "next_before": next_before,
        "query": query.urlencode(),
        "sort": sort,
    }
    return render(request, "audit/list.html", context)


@permission_required(VIEW_AUDIT_ENTRY)
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    _form, entries = _filtered(request)
    header = ["at", "actor", "action", "object_type", "object_id", "object", "before", "after"]
    header.append("remote_address")
    rows = (
        [
            entry.at.isoformat(),
            entry.actor_label,
            entry.action,
            entry.object_type,
            entry.object_id,
            entry.object_label,
            json.dumps(entry.before, ensure_ascii=False) if entry.before is not None else "",
            json.dumps(entry.after, ensure_ascii=False) if entry.after is not None else "",
            entry.remote_address or "",
        ]
        for entry in entries.iterator(chunk_size=2000)
    )
    return streaming_csv("audit-log.csv", header, rows)
