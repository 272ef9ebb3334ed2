"""How exports answer what connections announce (``connections.signals``); connected in
``ExportsConfig.ready``."""

from __future__ import annotations

from exports import services, tasks


def release_exports_of_removed_connection(
    sender, *, connection, dependants_action: str, **kwargs
) -> None:
    services.exports_release_connection(connection=connection, action=dependants_action)


def alert_connection_needs_reauthentication(sender, *, connection_id: int, **kwargs) -> None:
    services.alert_after_commit(tasks.alert_connection_needs_reauthentication, connection_id)
