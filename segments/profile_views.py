from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from core.csv_stream import streaming_csv
from core.listing import search_query
from core.permissions import permission_required
from segments import selectors, services
from segments.consent import consent_records_for_profile
from segments.forms import ProfileImportForm
from segments.models import Profile, ProfileField, ProfileImport
from segments.permissions import IMPORT_PROFILES, VIEW_PROFILE

PAGE_SIZE = 50


@permission_required(VIEW_PROFILE)
def profile_list(request: HttpRequest) -> HttpResponse:
    query = search_query(request.GET.get("q"))
    sort = selectors.PROFILE_SORTING.parse(request.GET.get("sort"))
    profiles = selectors.profile_search(query, sort)
    page = Paginator(profiles, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "query": query, "sort": sort, "fields": ProfileField.objects.all()}
    return render(request, "segments/profiles.html", context)


@permission_required(VIEW_PROFILE)
def profile_detail(request: HttpRequest, profile_id: int) -> HttpResponse:
    """One profile: its fields, each value with the writer that set it last, and the consent
    records of its address (who opted out where)."""
    profile = get_object_or_404(Profile, pk=profile_id)
    context = {
        "profile": profile,
        "fields": selectors.profile_fields_with_origins(profile),
        "consent_records": list(consent_records_for_profile(profile)),
    }
    return render(request, "segments/profile.html", context)


@permission_required(IMPORT_PROFILES)
def profile_import(request: HttpRequest) -> HttpResponse:
    form = ProfileImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        started = services.profile_import_start(
            upload=form.cleaned_data["file"], column_map=form.column_map(), user=request.user
        )
        messages.info(request, _("Importing “%(file)s”.") % {"file": started.file_name})
        return redirect("profiles:import_detail", import_id=started.pk)
    recent = ProfileImport.objects.all()[:20]
    return render(request, "segments/import.html", {"form": form, "imports": recent})


@permission_required(IMPORT_PROFILES)
def profile_import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    profile_import = get_object_or_404(ProfileImport, pk=import_id)
    context = {"import": profile_import, **selectors.import_problems(profile_import)}
    if request.htmx:
        return render(request, "segments/import_detail.html#outcome", context)
    return render(request, "segments/import_detail.html", context)


@permission_required(IMPORT_PROFILES)
def profile_import_problems_csv(request: HttpRequest, import_id: int) -> StreamingHttpResponse:
    """**Download the problem rows**: every rejected row and warning the report lists."""
    profile_import = get_object_or_404(ProfileImport, pk=import_id)
    return streaming_csv(*selectors.import_problems_table(profile_import))
