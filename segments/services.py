"""Writes on segments and profile imports. Views and tasks call these; nothing else writes."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, transaction
from django.utils import timezone

from config.translation import gettext_later as _
from config.translation import stored
from segments import membership, tasks
from segments.importing import ColumnMap, ImportFileError, ImportReport, import_csv
from segments.models import ProfileImport, Segment
from segments.rules import RuleError

logger = logging.getLogger(__name__)

# A refresh "queued" or "running" for longer than this lost its worker and may be requested again.
STALE_REFRESH_AFTER = timedelta(minutes=30)


def segment_save(
    *, segment: Segment | None, name: str, description: str, rules: dict, user
) -> Segment:
    """Create or update a segment. Rules are validated by the form before they get here."""
    if segment is None:
        segment = Segment(created_by=user)
    segment.name, segment.description, segment.rules = name, description, rules
    segment.save()
    return segment


def segment_delete(*, segment: Segment) -> None:
    segment.delete()


def segment_request_refresh(*, segment: Segment) -> bool:
    """Queue a refresh unless one is already queued or running; return whether one was queued."""
    stale_before = timezone.now() - STALE_REFRESH_AFTER
    with transaction.atomic():
        queued = (
            Segment.objects.filter(pk=segment.pk)
            .exclude(
                refresh_state__in=[Segment.RefreshState.QUEUED, Segment.RefreshState.RUNNING],
                refresh_requested_at__gte=stale_before,
            )
            .update(refresh_state=Segment.RefreshState.QUEUED, refresh_requested_at=timezone.now())
        )
        if queued:
            transaction.on_commit(lambda: _enqueue_refresh(segment.pk))
    return bool(queued)


def _enqueue_refresh(segment_id: int) -> None:
    try:
        tasks.refresh_segment.delay(segment_id)
    except Exception as error:  # the broker is down: say so instead of staying "queued"
        logger.exception("Could not queue the refresh of segment %s", segment_id)
        Segment.objects.filter(pk=segment_id).update(
            refresh_state=Segment.RefreshState.IDLE,
            last_error=stored(
                _("The refresh could not be queued (%(error)s). Try again shortly.")
                % {"error": error.__class__.__name__}
            ),
        )


def segment_request_refresh_all() -> int:
    """Queue a refresh of every segment; return how many were queued."""
    return sum(segment_request_refresh(segment=segment) for segment in Segment.objects.all())


def segment_refresh(*, segment_id: int) -> Segment:
    """Materialise the segment's members now. A failure is recorded on the segment, not raised."""
    Segment.objects.filter(pk=segment_id).update(refresh_state=Segment.RefreshState.RUNNING)
    segment = Segment.objects.get(pk=segment_id)
    started = time.monotonic()
    try:
        count = membership.rematerialise(segment)
    except (DatabaseError, RuleError) as error:
        logger.exception("Refreshing segment %s failed", segment_id)
        segment.status = Segment.Status.FAILED
        segment.last_error = stored(
            _(
                "The segment could not be refreshed: %(error)s. Check its rules and refresh it "
                "again."
            )
            % {"error": str(error).splitlines()[0] if str(error) else error.__class__.__name__}
        )
    else:
        segment.status = Segment.Status.ACTIVE
        segment.member_count = count
        segment.last_error = ""
        segment.last_refreshed_at = timezone.now()
        segment.last_refresh_seconds = time.monotonic() - started
    segment.refresh_state = Segment.RefreshState.IDLE
    segment.save(
        update_fields=[
            "status",
            "member_count",
            "last_error",
            "last_refreshed_at",
            "last_refresh_seconds",
            "refresh_state",
            "updated_at",
        ]
    )
    return segment


def profile_import_start(*, upload: UploadedFile, column_map: ColumnMap, user) -> ProfileImport:
    """Store the uploaded file and queue its import."""
    folder = Path(settings.MEDIA_ROOT) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / f"{uuid.uuid4().hex}.csv"
    with stored.open("wb") as destination:
        for chunk in upload.chunks():
            destination.write(chunk)
    with transaction.atomic():
        profile_import = ProfileImport.objects.create(
            file_name=Path(upload.name or "upload.csv").name[:255],
            stored_path=str(stored),
            column_map=vars(column_map),
            created_by=user,
        )
        transaction.on_commit(lambda: tasks.import_profiles.delay(profile_import.pk))
    return profile_import


def profile_import_run(*, import_id: int) -> ProfileImport:
    """Run a queued import and record its outcome; the stored file is removed afterwards."""
    profile_import = ProfileImport.objects.get(pk=import_id)
    profile_import.status = ProfileImport.Status.RUNNING
    profile_import.save(update_fields=["status"])
    path = Path(profile_import.stored_path)
    try:
        with path.open("rb") as stream:
            report = import_csv(stream, ColumnMap(**profile_import.column_map))
    except ImportFileError as error:
        profile_import.status = ProfileImport.Status.FAILED
        profile_import.error = str(error)
    except (OSError, DatabaseError) as error:
        logger.exception("Profile import %s failed", import_id)
        profile_import.status = ProfileImport.Status.FAILED
        profile_import.error = stored(
            _("The import failed: %(error)s") % {"error": error.__class__.__name__}
        )
    else:
        record_import_report(profile_import, report)
    finally:
        path.unlink(missing_ok=True)
    profile_import.finished_at = timezone.now()
    profile_import.save()
    return profile_import


def record_import_report(profile_import: ProfileImport, report: ImportReport) -> None:
    profile_import.rows_read = report.rows_read
    profile_import.created_count = report.created
    profile_import.updated_count = report.updated
    profile_import.unchanged_count = report.unchanged
    profile_import.rejected_count = report.rejected
    profile_import.rejected_rows = [vars(row) for row in report.rejected_rows]
    if report.imported == 0 and report.rejected:
        profile_import.status = ProfileImport.Status.FAILED
        profile_import.error = stored(_("No row could be imported."))
    elif report.rejected:
        profile_import.status = ProfileImport.Status.COMPLETED_WITH_ERRORS
    else:
        profile_import.status = ProfileImport.Status.SUCCEEDED
