"""Celery tasks: they take ids and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def refresh_segment(segment_id: int) -> None:
    from segments.services import segment_refresh

    segment_refresh(segment_id=segment_id)


@shared_task(acks_late=True)
def refresh_segments(segment_ids: list[int]) -> None:
    """Refresh the segments one after the other, in the order given (dependency order)."""
    from segments.services import segment_refresh

    for segment_id in segment_ids:
        segment_refresh(segment_id=segment_id)


@shared_task(acks_late=True)
def import_profiles(import_id: int) -> None:
    from segments.services import profile_import_run

    profile_import_run(import_id=import_id)


@shared_task(acks_late=True)
def recount_fields() -> None:
    from segments.catalogue import recount_fields

    recount_fields()
