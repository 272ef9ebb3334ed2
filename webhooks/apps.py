from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Webhooks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from connections import signals as connection_signals
        from exports import signals as export_signals
        from segments import signals as segment_signals
        from webhooks import receivers

        export_signals.run_finished.connect(receivers.export_run_finished, dispatch_uid="wh.run")
        segment_signals.segment_refreshed.connect(
            receivers.segment_refreshed, dispatch_uid="wh.segment"
        )
        connection_signals.connection_needs_reauthentication.connect(
            receivers.connection_needs_reauthentication, dispatch_uid="wh.connection"
        )
