from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = _("Exports")

    def ready(self) -> None:
        from celery.signals import worker_ready

        from connections import signals
        from exports import erasures, receivers, selectors
        from exports import signals as export_signals
        from segments import membership

        membership.count_days_in(selectors.schedule_time_zone_name)

        signals.connection_deleting.connect(
            receivers.release_exports_of_removed_connection, dispatch_uid="exports.release"
        )
        worker_ready.connect(receivers.resume_stalled_runs_soon, dispatch_uid="exports.resume")
        signals.connection_needs_reauthentication.connect(
            receivers.alert_connection_needs_reauthentication, dispatch_uid="exports.reauth_alert"
        )
        export_signals.export_run_finished.connect(
            erasures.confirm_after_run, dispatch_uid="exports.erasures"
        )
