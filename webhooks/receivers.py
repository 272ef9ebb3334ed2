"""The events, from what the other apps announce, in the payloads the README documents."""

from __future__ import annotations

from webhooks.services import emit


def export_run_finished(sender, *, run, **kwargs) -> None:
    if run.status not in ("succeeded", "failed", "completed_with_warnings"):
        return  # skipped and cancelled runs delivered nothing
    counts = ("profiles_total", "sent", "added", "updated", "unchanged", "removed")
    emit(
        "export_run.finished",
        {
            "run": run.pk,
            "export": run.export_id,
            "export_name": run.export.display_name,
            "status": run.status,
            "counts": {name: getattr(run, name) for name in (*counts, "failed", "skipped")},
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        },
    )


def segment_refreshed(sender, *, segment, **kwargs) -> None:
    emit(
        "segment.refreshed",
        {
            "segment": segment.pk,
            "name": segment.name,
            "status": segment.status,
            "member_count": segment.member_count,
        },
    )


def connection_needs_reauthentication(sender, *, connection_id: int, **kwargs) -> None:
    from connections.models import Connection

    connection = Connection.objects.filter(pk=connection_id).only("display_name", "kind").first()
    if connection is not None:
        emit(
            "connection.needs_reauthentication",
            {"connection": connection_id, "name": connection.display_name, "kind": connection.kind},
        )
