"""Reads on sources and their runs."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from sources.models import FieldOrigin, Source, SourceRun


def source_list() -> QuerySet[Source]:
    latest = (
        SourceRun.objects.filter(source=OuterRef("pk"))
        .exclude(status=SourceRun.Status.SKIPPED)
        .order_by("-created_at", "-id")
    )
    return Source.objects.defer("encrypted_secrets").annotate(
        latest_run_status=Subquery(latest.values("status")[:1])
    )


def run_list(source: Source) -> QuerySet[SourceRun]:
    return SourceRun.objects.filter(source=source).order_by("-created_at", "-id")


def field_origins() -> QuerySet[FieldOrigin]:
    return FieldOrigin.objects.select_related("source").order_by("field_name")


def source_names(ids: set[int]) -> dict[int, str]:
    """The names of these sources (``segments.origins`` asks, to say where a value came from)."""
    return dict(Source.objects.filter(pk__in=ids).values_list("pk", "name"))
