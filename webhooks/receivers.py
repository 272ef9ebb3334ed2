"""How webhooks answer what the other apps announce; connected in ``WebhooksConfig.ready``.

The apps below never import webhooks: each sends a signal (``exports.signals``,
``segments.signals``, ``connections.signals``) and these turn it into an event.
"""

from __future__ import annotations

from webhooks import events, services


def _publish(event_type: str, data: dict | None) -> None:
    if data is not None:
        services.event_publish(event_type, data)


def export_run_finished(sender, *, run_id: int, **kwargs) -> None:
    _publish(events.EXPORT_RUN_FINISHED, events.export_run_finished(run_id))


def export_run_awaiting_approval(sender, *, run_id: int, **kwargs) -> None:
    _publish(events.EXPORT_RUN_AWAITING_APPROVAL, events.export_run_awaiting_approval(run_id))


def export_run_discarded(sender, *, run_id: int, **kwargs) -> None:
    _publish(events.EXPORT_RUN_DISCARDED, events.export_run_discarded(run_id))


def segment_refreshed(sender, *, segment_id: int, joined=None, left=None, **kwargs) -> None:
    _publish(
        events.SEGMENT_REFRESHED, events.segment_refreshed(segment_id, joined=joined, left=left)
    )


def connection_needs_reauthentication(sender, *, connection_id: int, **kwargs) -> None:
    _publish(
        events.CONNECTION_NEEDS_REAUTHENTICATION,
        events.connection_needs_reauthentication(connection_id),
    )
