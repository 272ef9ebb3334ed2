"""The scheduled refresh: stored in ``RefreshSchedule``, applied as django-celery-beat entries.

Celery beat's DatabaseScheduler notices changed entries on its own, so saving the schedule
takes effect without restarting anything.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

import audit
from audit.actions import AuditAction
from connections.consent import read_back_all
from exports import selectors, services
from exports.messages import awaiting_approval, segment_not_ready
from exports.models import Export, RefreshSchedule
from segments.models import Segment
from segments.services import segments_refresh_in_order
from sources.services import sources_run_scheduled

logger = logging.getLogger(__name__)

TASK_NAME_PREFIX = "Scheduled refresh"
TASK = "exports.tasks.scheduled_refresh"
# django-celery-beat (crontab) counts days from Sunday = 0; ISO from Monday = 1.
_CRON_DAY = {1: "1", 2: "2", 3: "3", 4: "4", 5: "5", 6: "6", 7: "0"}


@transaction.atomic
def schedule_save(
    *, enabled: bool, frequency: str, weekdays: list[int], time_zone: str, times: list[str], user
) -> RefreshSchedule:
    schedule = RefreshSchedule.load()
    before = audit.snapshot(schedule)
    schedule.enabled = enabled
    schedule.frequency = frequency
    schedule.weekdays = (
        sorted(set(weekdays)) if frequency == RefreshSchedule.Frequency.WEEKLY else []
    )
    schedule.time_zone = time_zone
    schedule.times = times[: RefreshSchedule.MAX_TIMES]
    schedule.updated_by = user
    schedule.save()
    audit.record(AuditAction.SCHEDULE_UPDATED, schedule, before=before)
    apply_to_beat(schedule)
    return schedule


def apply_to_beat(schedule: RefreshSchedule) -> None:
    """Make the beat entries match the schedule: one entry per time, none when it is off."""
    wanted = []
    if schedule.enabled:
        day_of_week = (
            ",".join(_CRON_DAY[day] for day in schedule.weekdays)
            if schedule.frequency == RefreshSchedule.Frequency.WEEKLY
            else "*"
        )
        for index, time_text in enumerate(schedule.times, start=1):
            hour, minute = (int(part) for part in time_text.split(":"))
            crontab, _created = CrontabSchedule.objects.get_or_create(
                minute=str(minute),
                hour=str(hour),
                day_of_week=day_of_week,
                day_of_month="*",
                month_of_year="*",
                timezone=schedule.time_zone,
            )
            name = f"{TASK_NAME_PREFIX} {index}"
            PeriodicTask.objects.update_or_create(
                name=name,
                defaults={"task": TASK, "crontab": crontab, "interval": None, "enabled": True},
            )
            wanted.append(name)
    for stale in PeriodicTask.objects.filter(name__startswith=TASK_NAME_PREFIX).exclude(
        name__in=wanted
    ):
        stale.delete()


def run_refresh_chain() -> dict[str, int]:
    """Read every source on the schedule, then read consent back from every connection that
    reads it, then refresh every segment, then run every export on the schedule.

    A source that fails is recorded on its run; the segments refresh on what the others wrote.
    A connection whose read-back fails is recorded on it and retried by its task; the others
    are read all the same, and the segments refresh on what was read.
    An export whose segment failed to refresh is recorded as skipped, with the reason.
    """
    sources = sources_run_scheduled()
    consent = read_back_all()
    refreshed = failed_segments = 0
    for segment in segments_refresh_in_order():
        if segment.status == Segment.Status.FAILED:
            failed_segments += 1
        else:
            refreshed += 1
    queued = skipped = 0
    for export in Export.objects.filter(
        schedule_enabled=True, connection__isnull=False
    ).prefetch_related("segments"):
        broken = next(
            (
                s
                for s in export.segments.all()
                if s.status == Segment.Status.FAILED or not s.is_active
            ),
            None,
        )
        if broken is not None:
            services.run_skip(export=export, reason=segment_not_ready(broken))
            skipped += 1
            continue
        waiting = selectors.run_awaiting_approval(export)
        if waiting is not None:  # it holds the export until someone approves or discards it
            services.run_skip(export=export, reason=awaiting_approval(waiting))
            skipped += 1
            continue
        try:
            services.run_request(export=export)
            queued += 1
        except services.ExportAlreadyRunning:
            logger.info("Scheduled run of export %s skipped: it is already running", export.pk)
    return {
        **sources,
        **consent,
        "segments_refreshed": refreshed,
        "segments_failed": failed_segments,
        "exports_queued": queued,
        "exports_skipped": skipped,
    }
