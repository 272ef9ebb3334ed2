from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        from connections.signals import connection_needs_reauthentication
        from exports.signals import (
            export_run_awaiting_approval,
            export_run_discarded,
            export_run_finished,
        )
        from segments.signals import segment_refreshed
        from webhooks import receivers

        connection_needs_reauthentication.connect(
            receivers.connection_needs_reauthentication, dispatch_uid="webhooks.reauth"
        )
        export_run_finished.connect(receivers.export_run_finished, dispatch_uid="webhooks.run")
        export_run_awaiting_approval.connect(
            receivers.export_run_awaiting_approval, dispatch_uid="webhooks.run_awaiting_approval"
        )
        export_run_discarded.connect(
            receivers.export_run_discarded, dispatch_uid="webhooks.run_discarded"
        )
        segment_refreshed.connect(receivers.segment_refreshed, dispatch_uid="webhooks.segment")
