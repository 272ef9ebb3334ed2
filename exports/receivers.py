"""How exports answer what connections announce (``connections.signals``); connected in
``ExportsConfig.ready``."""

from __future__ import annotations

from django.conf import settings

from exports import services, tasks


def release_exports_of_removed_connection(
    sender, *, connection, dependants_action: str, **kwargs
) -> None:
    services.exports_release_connection(connection=connection, action=dependants_action)


def alert_connection_needs_reauthentication(sender, *, connection_id: int, **kwargs) -> None:
    services.alert_after_commit(tasks.alert_connection_needs_reauthentication, connection_id)


def resume_stalled_runs_soon(sender, **kwargs) -> None:
    """A worker is ready: queue the sweep of stalled runs now, and once more when a run its
    predecessor left would count as stalled. A worker that starts picks them up itself, beat or
    not."""
    tasks.resume_stalled_runs.delay()
    tasks.resume_stalled_runs.apply_async(countdown=settings.EXPORT_STALLED_AFTER_SECONDS + 1)
