from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from config.translation import shown
from exports import services
from exports.models import Export, ExportRun

POLL_SECONDS = 1.0


class Command(BaseCommand):
    help = "Queue a run of an export (id or display name); --wait prints progress until it ends."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("export", metavar="ID_OR_NAME")
        parser.add_argument(
            "--wait", action="store_true", help="Wait for the run and print progress."
        )

    def handle(self, *args, export: str, wait: bool, **options) -> None:
        query = Q(display_name=export) | (Q(pk=int(export)) if export.isdigit() else Q())
        matches = list(Export.objects.filter(query)[:2])
        if not matches:
            raise CommandError(f"No export with id or name “{export}”.")
        if len(matches) > 1:
            raise CommandError(f"More than one export is called “{export}”; use its id.")
        try:
            run = services.run_request(export=matches[0])
        except services.ExportAlreadyRunning as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Queued run {run.pk} of “{matches[0].display_name}”.")
        if not wait:
            return
        last_line = ""
        while True:
            run.refresh_from_db()
            line = (
                f"{run.get_status_display()}: {run.percent}% — {run.sent} sent,"
                f" {run.failed} failed, "
                f"{run.skipped} skipped of {run.profiles_total}"
            )
            if line != last_line:
                self.stdout.write(line)
                last_line = line
            if not run.is_active:
                break
            time.sleep(POLL_SECONDS)
        if run.last_error:
            self.stderr.write(shown(run.last_error))
        if run.status not in ExportRun.DELIVERED_STATUSES:
            raise CommandError(f"Run {run.pk} ended: {run.get_status_display()}.")
