"""Writes on segments and profile imports. Views and tasks call these; nothing else writes."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, transaction
from django.db.models import Count, F, ProtectedError
from django.db.models.functions import Greatest
from django.utils import timezone

import audit
from audit.actions import AuditAction
from config.translation import gettext_later as _
from config.translation import stored
from segments import membership, signals, tasks
from segments.dependencies import refresh_order, segments_using
from segments.importing import (
    ColumnMap,
    ImportFileError,
    ImportReport,
    import_csv,
    import_json_records,
)
from segments.models import Profile, ProfileImport, Segment, SegmentMember, SegmentRefresh
from segments.rules import RuleError, segments_used, validate

logger = logging.getLogger(__name__)

# A refresh "queued" or "running" for longer than this lost its worker and may be requested again.
STALE_REFRESH_AFTER = timedelta(minutes=30)


@transaction.atomic
def segment_save(
    *, segment: Segment | None, name: str, description: str, rules: dict, user
) -> Segment:
    """Create or update a segment. Raises RuleError when the rules do not validate (including
    a segment that would use itself); the form has usually said so already.

    An update writes only the fields it changes: a refresh may have changed the members' count
    and version since ``segment`` was read (with an UPDATE of its own), and a whole save of
    the instance read before would put the old ones back."""
    rules = validate(rules, for_segment=segment.pk if segment else None)
    before = audit.snapshot(segment) if segment is not None else None
    if segment is None:
        segment = Segment(created_by=user, name=name, description=description, rules=rules)
        segment.save()
    else:
        segment.name, segment.description, segment.rules = name, description, rules
        segment.save(update_fields=["name", "description", "rules", "updated_at"])
    segment.uses.set(segments_used(rules))
    audit.record(
        AuditAction.SEGMENT_UPDATED if before else AuditAction.SEGMENT_CREATED,
        segment,
        before=before,
    )
    return segment


class SegmentInUse(Exception):
    """Other segments are built from this one; the message names them."""


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    """Remove the segment; raise SegmentInUse when other segments use it."""
    users = segments_using(segment)
    if users:
        raise SegmentInUse(
            _("“%(name)s” cannot be removed: %(users)s use it. Change or remove those first.")
            % {"name": segment.name, "users": ", ".join(f"“{user.name}”" for user in users)}
        )
    try:
        with transaction.atomic():
            audit.record(
                AuditAction.SEGMENT_DELETED, segment, before=audit.snapshot(segment), after=None
            )
            segment.delete()
    except ProtectedError as error:
        # Kept by a higher layer (e.g. an exclusion of its members from every export).
        raise SegmentInUse(
            _("“%(name)s” cannot be removed while it is used by: %(users)s. Remove those first.")
            % {
                "name": segment.name,
                "users": "; ".join(str(kept) for kept in error.protected_objects),
            }
        ) from None


def segment_set_active(*, segment: Segment, active: bool) -> Segment:
    """Activate or deactivate. An inactive segment is not refreshed, and exports that use it
    are skipped; activating it queues a refresh."""
    segment.is_active = active
    # Only what changes here: the status and fingerprint may have changed by a refresh since
    # ``segment`` was read.
    if active:
        segment.inputs_fingerprint = ""
        changed = ["is_active", "inputs_fingerprint", "updated_at"]
    else:
        segment.status = Segment.Status.INACTIVE
        changed = ["is_active", "status", "updated_at"]
    segment.save(update_fields=changed)
    if active:
        segment_request_refresh(segment=segment)
    return segment


def segment_set_static(*, segment: Segment, static: bool) -> Segment:
    """Make static (the current members are kept as they are: refreshes leave them alone) or
    dynamic again (the next refresh, queued now, follows the rules again)."""
    segment.is_static = static
    segment.inputs_fingerprint = ""
    segment.save(update_fields=["is_static", "inputs_fingerprint", "updated_at"])
    if not static:
        segment_request_refresh(segment=segment)
    return segment


def segment_request_refresh(*, segment: Segment) -> bool:
    """Queue a refresh unless one is already queued or running, or the segment is inactive or
    static; return whether one was queued."""
    if not _refreshable(segment):
        return False
    if not _mark_queued(segment.pk):
        return False
    transaction.on_commit(lambda: _enqueue_refresh(segment.pk))
    return True


def _refreshable(segment: Segment) -> bool:
    return segment.is_active and not segment.is_static


def _mark_queued(segment_id: int) -> bool:
    stale_before = timezone.now() - STALE_REFRESH_AFTER
    return bool(
        Segment.objects.filter(pk=segment_id)
        .exclude(
            refresh_state__in=[Segment.RefreshState.QUEUED, Segment.RefreshState.RUNNING],
            refresh_requested_at__gte=stale_before,
        )
        .update(refresh_state=Segment.RefreshState.QUEUED, refresh_requested_at=timezone.now())
    )


def _enqueue_refresh(segment_id: int) -> None:
    try:
        tasks.refresh_segment.delay(segment_id)
    except Exception as error:  # the broker is down: say so instead of staying "queued"
        logger.exception("Could not queue the refresh of segment %s", segment_id)
        _refresh_not_queued(segment_id, error)


def _refresh_not_queued(segment_id: int, error: Exception) -> None:
    Segment.objects.filter(pk=segment_id).update(
        refresh_state=Segment.RefreshState.IDLE,
        last_error=stored(
            _("The refresh could not be queued (%(error)s). Try again shortly.")
            % {"error": error.__class__.__name__}
        ),
    )


def segment_request_refresh_all() -> int:
    """Queue one refresh of every active, dynamic segment, in dependency order; return how many
    were queued."""
    candidates = [s.pk for s in Segment.objects.all() if _refreshable(s)]
    queued = [pk for pk in refresh_order(candidates) if _mark_queued(pk)]
    if queued:
        transaction.on_commit(lambda: _enqueue_refresh_all(queued))
    return len(queued)


def _enqueue_refresh_all(segment_ids: list[int]) -> None:
    try:
        tasks.refresh_segments.delay(segment_ids)
    except Exception as error:  # the broker is down: say so instead of staying "queued"
        logger.exception("Could not queue the refresh of segments %s", segment_ids)
        for segment_id in segment_ids:
            _refresh_not_queued(segment_id, error)


def segments_refresh_in_order() -> list[Segment]:
    """Refresh every active, dynamic segment now, each after the segments it uses."""
    candidates = [s.pk for s in Segment.objects.all() if _refreshable(s)]
    return [segment_refresh(segment_id=pk) for pk in refresh_order(candidates)]


def segment_refresh(*, segment_id: int, now: datetime | None = None) -> Segment:
    """Materialise the segment's members now and record the refresh in its history.

    Inactive and static segments are left alone. A failure is recorded on the segment, not
    raised.
    """
    segment = Segment.objects.get(pk=segment_id)
    if not _refreshable(segment):
        Segment.objects.filter(pk=segment_id).update(refresh_state=Segment.RefreshState.IDLE)
        segment.refresh_state = Segment.RefreshState.IDLE
        return segment
    Segment.objects.filter(pk=segment_id).update(refresh_state=Segment.RefreshState.RUNNING)
    started = time.monotonic()
    try:
        outcome = membership.rematerialise(segment, now=now)
    except (DatabaseError, RuleError) as error:
        logger.exception("Refreshing segment %s failed", segment_id)
        segment.status = Segment.Status.FAILED
        segment.inputs_fingerprint = ""
        segment.last_error = stored(
            _(
                "The segment could not be refreshed: %(error)s. Check its rules and refresh it "
                "again."
            )
            % {"error": str(error).splitlines()[0] if str(error) else error.__class__.__name__}
        )
    else:
        segment.status = Segment.Status.ACTIVE
        segment.member_count = outcome.member_count
        segment.inputs_fingerprint = outcome.fingerprint
        if outcome.joined or outcome.left:
            segment.members_version += 1
        segment.last_error = ""
        segment.last_refreshed_at = now or timezone.now()
        segment.last_refresh_seconds = time.monotonic() - started
        SegmentRefresh.objects.create(
            segment=segment,
            refreshed_at=segment.last_refreshed_at,
            member_count=outcome.member_count,
            joined=outcome.joined,
            left=outcome.left,
            unchanged=outcome.unchanged,
        )
    segment.refresh_state = Segment.RefreshState.IDLE
    segment.save(
        update_fields=[
            "status",
            "member_count",
            "inputs_fingerprint",
            "members_version",
            "last_error",
            "last_refreshed_at",
            "last_refresh_seconds",
            "refresh_state",
            "updated_at",
        ]
    )
    if segment.status == Segment.Status.ACTIVE:
        signals.segment_refreshed.send_robust(
            sender=Segment, segment_id=segment.pk, joined=outcome.joined, left=outcome.left
        )
    return segment


@dataclass(frozen=True)
class ProfilesErased:
    profiles: int
    memberships: int


@transaction.atomic
def profiles_erase(*, profile_ids: Collection[int], erasure_id: int) -> ProfilesErased:
    """Delete these profiles and their segment memberships (erasure ``erasure_id``).

    The segments they were members of have their stored member count lowered in the same
    transaction (and their members' version moved on, as a refresh that saw them leave would),
    so counts are right at once, not at the next refresh. One audit entry records the erasure
    with its numbers only: nothing that names the person.
    """
    profile_ids = list(profile_ids)
    memberships = SegmentMember.objects.filter(profile_id__in=profile_ids)
    lost = dict(memberships.order_by().values_list("segment_id").annotate(lost=Count("profile_id")))
    # Lock the segments first, in one order, so that two erasures never wait on each other.
    list(Segment.objects.filter(pk__in=lost).order_by("pk").select_for_update().values("pk"))
    for segment_id, count in lost.items():
        Segment.objects.filter(pk=segment_id).update(
            member_count=Greatest(F("member_count") - count, 0),
            members_version=F("members_version") + 1,
        )
    removed = memberships.delete()[0]
    profiles = Profile.objects.filter(pk__in=profile_ids).delete()[1].get(Profile._meta.label, 0)
    audit.record(
        AuditAction.PROFILE_ERASED,
        object_type="erasure",
        object_id=erasure_id,
        object_label=f"erasure {erasure_id}",
        after={
            "profiles_erased": profiles,
            "memberships_erased": removed,
            "segments": {str(pk): count for pk, count in sorted(lost.items())},
        },
    )
    return ProfilesErased(profiles=profiles, memberships=removed)


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
            report = import_csv(
                stream, ColumnMap(**profile_import.column_map), recount_fields=False
            )
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
        if report.created + report.updated:
            # The report is the user's to read now; the counts read every profile (2.7 s of
            # a 1,000,000-row import), so they follow in a task, as after the API and sources.
            transaction.on_commit(tasks.recount_fields.delay)
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
    profile_import.warning_count = report.warned
    profile_import.warnings = [vars(warning) for warning in report.warnings]
    if report.imported == 0 and report.rejected:
        profile_import.status = ProfileImport.Status.FAILED
        profile_import.error = stored(_("No row could be imported."))
    elif report.rejected:
        profile_import.status = ProfileImport.Status.COMPLETED_WITH_ERRORS
    else:
        profile_import.status = ProfileImport.Status.SUCCEEDED


# Profiles from the API -------------------------------------------------------------------------


def profiles_bulk_upsert(*, records: list) -> dict:
    """Create or update profiles from the API's records, checked and stored exactly as the CSV
    import does (``importing.import_json_records``): counts, and a result for every record.
    Raises ``ImportFileError``, storing nothing, when the records' attributes would take the
    field catalogue over ``PROFILE_FIELDS_MAX``."""
    result = import_json_records(records)
    _recount_fields_soon()
    return result


#: The field catalogue's counts are brought up to date at most this often during bulk upserts.
RECOUNT_EVERY_SECONDS = 30


def _recount_fields_soon() -> None:
    """One recount of the catalogue after a burst of calls, not one per call."""
    if cache.add("api:recount-fields", 1, timeout=RECOUNT_EVERY_SECONDS):
        transaction.on_commit(
            lambda: tasks.recount_fields.apply_async(countdown=RECOUNT_EVERY_SECONDS)
        )
