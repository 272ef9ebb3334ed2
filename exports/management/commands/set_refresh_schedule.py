from __future__ import annotations

import zoneinfo

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exports.models import RefreshSchedule
from exports.schedule import schedule_save
from exports.selectors import next_refreshes


class Command(BaseCommand):
    help = (
        "Set the refresh schedule (Admin > System > Schedule): every day, or on some weekdays, "
        "at up to four times. make demo uses it so that scheduled exports run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--times", nargs="+", required=True, help="HH:MM, up to four")
        parser.add_argument("--weekdays", nargs="*", type=int, default=[], help="1 = Monday")
        parser.add_argument("--time-zone", default="UTC")
        parser.add_argument(
            "--if-never-set",
            action="store_true",
            help="Leave a schedule somebody already set (or turned off) as it is.",
        )

    def handle(self, *args, times, weekdays, time_zone, if_never_set, **options) -> None:
        current = RefreshSchedule.load()
        if if_never_set and (current.enabled or current.times or current.updated_by_id):
            self.stdout.write("The refresh schedule was set before: left as it is.")
            return
        if time_zone not in zoneinfo.available_timezones():
            raise CommandError(f"Unknown time zone: {time_zone}")
        for text in times:
            hour, _, minute = text.partition(":")
            if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
                raise CommandError(f"Not a time of day (HH:MM): {text}")
        if len(times) > RefreshSchedule.MAX_TIMES:
            raise CommandError(f"At most {RefreshSchedule.MAX_TIMES} times a day.")
        schedule = schedule_save(
            enabled=True,
            frequency=(
                RefreshSchedule.Frequency.WEEKLY if weekdays else RefreshSchedule.Frequency.DAILY
            ),
            weekdays=weekdays,
            time_zone=time_zone,
            times=[f"{int(t.split(':')[0]):02d}:{int(t.split(':')[1]):02d}" for t in times],
            user=None,
        )
        (upcoming,) = next_refreshes(schedule, count=1) or (None,)
        self.stdout.write(f"The refresh schedule is on; the next refresh starts at {upcoming}.")
