from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.translation import shown
from segments.dependencies import refresh_order
from segments.models import Segment
from segments.services import segment_refresh


class Command(BaseCommand):
    help = (
        "Refresh segments now (all of them, or those named), each after the segments it uses, "
        "and print their member counts. Inactive and static segments are left as they are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME")

    def handle(self, *args, names: list[str], **options) -> None:
        segments = Segment.objects.all()
        if names:
            segments = segments.filter(name__in=names)
            missing = set(names) - set(segments.values_list("name", flat=True))
            if missing:
                raise CommandError(f"No segment called: {', '.join(sorted(missing))}")
        failed = 0
        for segment_id in refresh_order(segments.values_list("pk", flat=True)):
            refreshed = segment_refresh(segment_id=segment_id)
            if not refreshed.is_active or refreshed.is_static:
                state = "inactive" if not refreshed.is_active else "static"
                self.stdout.write(f"{refreshed.name}: left alone ({state})")
            elif refreshed.status == Segment.Status.FAILED:
                failed += 1
                self.stderr.write(f"{refreshed.name}: {shown(refreshed.last_error)}")
            else:
                unchanged = refreshed.refreshes.values_list("unchanged", flat=True).first()
                self.stdout.write(
                    f"{refreshed.name}: {refreshed.member_count} members "
                    f"({refreshed.last_refresh_seconds:.2f}s{', unchanged' if unchanged else ''})"
                )
        if failed:
            raise CommandError(f"{failed} segment(s) failed to refresh.")
