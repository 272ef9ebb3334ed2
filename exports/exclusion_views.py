"""Admin > Exclusions: addresses, domains and segments that no export ever sends. Only
administrators (``exports.manage_exclusion``) open these pages."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from core.permissions import permission_required
from exports import consent, exclusions, selectors
from exports.exclusion_forms import (
    ConsentRuleForm,
    ExclusionNoteForm,
    PastedExclusionsForm,
    SegmentExclusionForm,
)
from exports.models import ConsentRule, Exclusion
from exports.permissions import MANAGE_EXCLUSION

PAGE_SIZE = 50


def _page(request: HttpRequest, **forms) -> HttpResponse:
    kind = request.GET.get("kind", "")
    if kind not in Exclusion.Kind.values:
        kind = ""
    query = request.GET.get("q", "").strip()[:200]
    page = Paginator(selectors.exclusion_list(kind=kind, search=query), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "kind": kind,
        "query": query,
        "kinds": Exclusion.Kind.choices,
        "counts": selectors.exclusion_counts(),
        "address_form": PastedExclusionsForm(kind=Exclusion.Kind.ADDRESS, prefix="address"),
        "domain_form": PastedExclusionsForm(kind=Exclusion.Kind.DOMAIN, prefix="domain"),
        "segment_form": SegmentExclusionForm(prefix="segment"),
        "max_lines": exclusions.MAX_PASTED_LINES,
        "consent_form": ConsentRuleForm(
            prefix="consent", initial={"scope": ConsentRule.load().scope}
        ),
        "consent_counts": selectors.consent_exclusion_counts(),
        **forms,
    }
    return render(request, "exclusions/list.html", context)


@permission_required(MANAGE_EXCLUSION)
def exclusion_list(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@permission_required(MANAGE_EXCLUSION)
def exclusion_add(request: HttpRequest, kind: str) -> HttpResponse:
    if kind == Exclusion.Kind.SEGMENT:
        segment_form = SegmentExclusionForm(request.POST, prefix="segment")
        if not segment_form.is_valid():
            return _page(request, segment_form=segment_form)
        try:
            exclusion = exclusions.exclusion_add_segment(
                segment=segment_form.cleaned_data["segment"],
                note=segment_form.cleaned_data["note"],
                user=request.user,
            )
        except exclusions.ExclusionError as error:
            segment_form.add_error("segment", error.messages)
            return _page(request, segment_form=segment_form)
        messages.success(
            request,
            _("The members of “%(name)s” are excluded from every export from the next run on.")
            % {"name": exclusion.segment},
        )
        return redirect("exclusions:list")
    if kind not in (Exclusion.Kind.ADDRESS, Exclusion.Kind.DOMAIN):
        raise Http404("No such kind of exclusion.")
    form = PastedExclusionsForm(request.POST, kind=kind, prefix=kind)
    if form.is_valid():
        try:
            added = exclusions.exclusions_add(
                kind=kind,
                values=form.cleaned_data["pasted"].values,
                note=form.cleaned_data["note"],
                user=request.user,
            )
        except exclusions.ExclusionError as error:
            form.add_error("lines", error.messages)
        else:
            messages.success(request, _added_message(kind, added, form.cleaned_data["pasted"]))
            return redirect("exclusions:list")
    return _page(request, **{f"{kind}_form": form})


def _added_message(kind: str, added: exclusions.Added, pasted: exclusions.Pasted) -> str:
    if kind == Exclusion.Kind.DOMAIN:
        parts = [
            ngettext(
                "%(count)s domain excluded from every export.",
                "%(count)s domains excluded from every export.",
                added.added,
            )
            % {"count": f"{added.added:,}"}
        ]
    else:
        parts = [
            ngettext(
                "%(count)s address excluded from every export.",
                "%(count)s addresses excluded from every export.",
                added.added,
            )
            % {"count": f"{added.added:,}"}
        ]
    if added.already:
        parts.append(
            ngettext(
                "%(count)s was excluded already.", "%(count)s were excluded already.", added.already
            )
            % {"count": f"{added.already:,}"}
        )
    if pasted.duplicates:
        parts.append(
            ngettext(
                "%(count)s repeated line was counted once.",
                "%(count)s repeated lines were counted once.",
                pasted.duplicates,
            )
            % {"count": f"{pasted.duplicates:,}"}
        )
    parts.append(_("Mirror exports remove them from their lists at their next run."))
    return " ".join(parts)


@require_POST
@permission_required(MANAGE_EXCLUSION)
def consent_rule_save(request: HttpRequest) -> HttpResponse:
    """Whom a consent record keeps out: every export, or that connection's exports only."""
    form = ConsentRuleForm(request.POST, prefix="consent")
    if not form.is_valid():
        return _page(request, consent_form=form)
    consent.rule_save(scope=form.cleaned_data["scope"], user=request.user)
    messages.success(request, _("Consent rule saved. It applies from the next run on."))
    return redirect("exclusions:list")


@permission_required(MANAGE_EXCLUSION)
def exclusion_edit(request: HttpRequest, exclusion_id: int) -> HttpResponse:
    exclusion = get_object_or_404(Exclusion.objects.select_related("segment"), pk=exclusion_id)
    form = ExclusionNoteForm(request.POST or None, initial={"note": exclusion.note})
    if request.method == "POST" and form.is_valid():
        exclusions.exclusion_update(exclusion=exclusion, note=form.cleaned_data["note"])
        messages.success(request, _("Exclusion saved."))
        return redirect("exclusions:list")
    return render(request, "exclusions/edit.html", {"form": form, "exclusion": exclusion})


@permission_required(MANAGE_EXCLUSION)
def exclusion_delete(request: HttpRequest, exclusion_id: int) -> HttpResponse:
    exclusion = get_object_or_404(Exclusion.objects.select_related("segment"), pk=exclusion_id)
    if request.method == "POST":
        exclusions.exclusion_delete(exclusion=exclusion)
        messages.success(
            request,
            _("%(exclusion)s removed: the next runs send those people again.")
            % {"exclusion": exclusion},
        )
        return redirect("exclusions:list")
    return render(request, "exclusions/delete.html", {"exclusion": exclusion})
