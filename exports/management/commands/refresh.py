from __future__ import annotations

from django.core.management.base import BaseCommand

from exports.schedule import run_refresh_chain


class Command(BaseCommand):
    help = (
        "Run the scheduled refresh now: run the sources, read consent back from the connections, "
        "refresh every segment, then queue every scheduled export."
    )

    def handle(self, *args, **options) -> None:
        outcome = run_refresh_chain()
        self.stdout.write(
            "{consent_reads} consent read-backs, {consent_reads_failed} failed; "
            "{segments_refreshed} segments refreshed, {segments_failed} failed; "
            "{exports_queued} exports queued, {exports_skipped} skipped.".format(**outcome)
        )
