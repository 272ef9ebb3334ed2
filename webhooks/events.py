"""The events an endpoint can subscribe to, and the ``data`` each one carries.

Every body has the same envelope: ``{"id", "type", "created_at", "data"}``; ``id`` is the
``Webhook-Id`` header. Payloads hold ids, names, states and counts, never a secret nor a
profile's address.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from exports.models import ExportRun

EXPORT_RUN_FINISHED = "export_run.finished"
EXPORT_RUN_AWAITING_APPROVAL = "export_run.awaiting_approval"
EXPORT_RUN_DISCARDED = "export_run.discarded"
SEGMENT_REFRESHED = "segment.refreshed"
CONNECTION_NEEDS_REAUTHENTICATION = "connection.needs_reauthentication"
#: Sent by "Send test event" only, whatever the endpoint subscribed to.
TEST = "webhook.test"

EVENT_CHOICES = [
    (EXPORT_RUN_FINISHED, _("An export run finished (successful, failed or with warnings)")),
    (
        EXPORT_RUN_AWAITING_APPROVAL,
        _("An export run stopped before sending and awaits approval"),
    ),
    (EXPORT_RUN_DISCARDED, _("An export run that awaited approval was discarded")),
    (SEGMENT_REFRESHED, _("A segment was refreshed")),
    (CONNECTION_NEEDS_REAUTHENTICATION, _("A connection needs re-authentication")),
]

#: The run states that announce ``export_run.finished``; skipped and cancelled runs do not.
FINISHED_RUN_STATUSES = (
    ExportRun.Status.SUCCEEDED,
    ExportRun.Status.FAILED,
    ExportRun.Status.COMPLETED_WITH_WARNINGS,
)


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def export_run_finished(run_id: int) -> dict[str, Any] | None:
    """The data of ``export_run.finished``, or None when the run's state is not announced."""
    from config.translation import shown

    run = ExportRun.objects.select_related("export").filter(pk=run_id).first()
    if run is None or run.status not in FINISHED_RUN_STATUSES:
        return None
    with translation.override(settings.LANGUAGE_CODE):
        error = shown(run.last_error) if run.last_error else None
    return {
        "export": {
            "id": run.export_id,
            "name": run.export.display_name,
            "url": _absolute(run.export.get_absolute_url()),
        },
        "run": {
            "id": run.pk,
            "status": run.status,
            "trigger": run.trigger,
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "error": error,
            "nothing_changed": run.nothing_changed,
            "counts": {
                "profiles": run.profiles_total,
                **{name: getattr(run, name) for name in ExportRun.COUNTS},
            },
        },
    }


def export_run_awaiting_approval(run_id: int) -> dict[str, Any] | None:
    """The data of ``export_run.awaiting_approval``: the run as in ``export_run.finished``,
    with the guard's numbers and reasons; None when the run no longer awaits approval."""
    run = ExportRun.objects.select_related("export").filter(pk=run_id).first()
    if run is None or run.status != ExportRun.Status.AWAITING_APPROVAL:
        return None
    return {"export": _export_link(run), "run": _held_run(run)}


def export_run_discarded(run_id: int) -> dict[str, Any] | None:
    """The data of ``export_run.discarded``: the run as in ``export_run.awaiting_approval``
    (it sent nothing), with when it ended and who discarded it (null when nobody did by name:
    the export was detached from its connection); None when the run is not discarded."""
    run = ExportRun.objects.select_related("export", "decided_by").filter(pk=run_id).first()
    if run is None or run.status != ExportRun.Status.DISCARDED:
        return None
    decider = run.decided_by
    return {
        "export": _export_link(run),
        "run": {
            **_held_run(run),
            "finished_at": _iso(run.finished_at),
            "decided_at": _iso(run.decided_at),
            "decided_by": (
                {"id": decider.pk, "name": decider.get_full_name() or decider.get_username()}
                if decider is not None
                else None
            ),
        },
    }


def _export_link(run: ExportRun) -> dict[str, Any]:
    return {
        "id": run.export_id,
        "name": run.export.display_name,
        "url": _absolute(run.export.get_absolute_url()),
    }


def _held_run(run: ExportRun) -> dict[str, Any]:
    """A run the guard held: as in ``export_run.finished``, with its page and the guard's
    numbers and reasons."""
    from config.translation import shown

    with translation.override(settings.LANGUAGE_CODE):
        reasons = [shown(line) for line in run.held_because.splitlines() if line]
    return {
        "id": run.pk,
        "status": run.status,
        "trigger": run.trigger,
        "started_at": _iso(run.started_at),
        "url": _absolute(reverse("exports:run_detail", args=[run.pk])),
        "counts": {
            "profiles": run.profiles_total,
            **{name: getattr(run, name) for name in ExportRun.COUNTS},
        },
        "guard": {
            "list_size": run.list_size or 0,
            "adds": run.to_add,
            "removals": run.to_remove,
            "list_size_after": run.list_size_after or 0,
            "reasons": reasons,
        },
    }


def segment_refreshed(
    segment_id: int, *, joined: int | None = None, left: int | None = None
) -> dict[str, Any] | None:
    """The data of ``segment.refreshed``; ``joined`` and ``left`` are null when not known."""
    from segments.models import Segment

    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        return None
    return {
        "segment": {
            "id": segment.pk,
            "name": segment.name,
            "member_count": segment.member_count,
            "joined": joined,
            "left": left,
            "refreshed_at": _iso(segment.last_refreshed_at),
        }
    }


def connection_needs_reauthentication(connection_id: int) -> dict[str, Any] | None:
    """The data of ``connection.needs_reauthentication``."""
    from connections.models import Connection

    connection = Connection.objects.filter(pk=connection_id).only("id", "display_name", "kind")
    connection = connection.first()
    if connection is None:
        return None
    return {
        "connection": {
            "id": connection.pk,
            "name": connection.display_name,
            "type": connection.kind,
        }
    }


def test_event() -> dict[str, Any]:
    return {"message": "This is a test event sent from Audience Relay."}
