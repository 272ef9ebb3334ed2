"""Materialise a segment's members with set-based SQL: an INSERT ... SELECT and an anti-join.

A refresh first takes a fingerprint of what it reads: the rules, the profiles (highest id,
latest change, number of deletions), the members version of every segment it uses, the day when
the rules have relative dates, and the consent records (newest id, count) when they read them.
When the fingerprint is the one of the last refresh, the members cannot have changed and nothing
is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from segments.consent import consent_stamp
from segments.models import Profile, ProfileDeletions, Segment, SegmentMember
from segments.rules import (
    compile_rules,
    segments_used,
    uses_consent,
    uses_relative_dates,
    validate,
)


@dataclass(frozen=True)
class RefreshOutcome:
    member_count: int
    joined: int
    left: int
    unchanged: bool
    fingerprint: str


def _no_schedule() -> str | None:
    return None


#: Reads the name of the time zone that days count in. The refresh schedule that holds it is kept
#: by the exports app, which is built on this one and plugs its reading in when it starts
#: (``count_days_in``, from ``ExportsConfig.ready``): segments never import exports.
_time_zone_name: Callable[[], str | None] = _no_schedule


def count_days_in(time_zone_name: Callable[[], str | None]) -> None:
    """Name where the time zone of relative dates is read (a callable returning its name)."""
    global _time_zone_name
    _time_zone_name = time_zone_name


def refresh_time_zone() -> ZoneInfo:
    """The refresh schedule's time zone: relative dates count days in it (UTC without one)."""
    try:
        return ZoneInfo(_time_zone_name() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def refresh_day(now: datetime | None = None) -> date:
    """Today in the schedule's time zone, at ``now`` (default: the current moment)."""
    return (now or timezone.now()).astimezone(refresh_time_zone()).date()


def estimate_size(rules: dict) -> int:
    """How many profiles the (validated) rules match right now."""
    return _matching_ids(rules, refresh_day()).count()


def _matching_ids(rules: dict, today: date) -> QuerySet:
    """The ids of the profiles the validated rules match, as one column called ``id``.

    A combination reads only the members of its segments: a million profiles need not be read
    to subtract one segment from another.
    """
    if "combine" not in rules:
        return Profile.objects.filter(compile_rules(rules, today=today)).values("id")
    first, *others = rules["segments"]

    def members(*segment_ids: int) -> QuerySet:
        return SegmentMember.objects.filter(segment_id__in=segment_ids).values("profile_id")

    if rules["combine"] == "union":
        return members(*rules["segments"]).values(id=F("profile_id")).distinct()
    combined = SegmentMember.objects.filter(segment_id=first)
    for other in others:
        if rules["combine"] == "intersection":
            combined = combined.filter(profile_id__in=members(other))
        else:
            combined = combined.exclude(profile_id__in=members(other))
    return combined.values(id=F("profile_id"))


def inputs_fingerprint(rules: dict, today: date) -> str:
    """A digest of everything the members of validated ``rules`` depend on."""
    # Combinations read profiles too: a removed profile leaves every segment at once.
    inputs: dict = {"rules": rules, "profiles": profiles_stamp()}
    used = segments_used(rules)
    if used:
        inputs["segments"] = sorted(
            Segment.objects.filter(pk__in=used).values_list("pk", "members_version")
        )
    if uses_relative_dates(rules):
        inputs["day"] = today
    if uses_consent(rules):
        inputs["consent"] = consent_stamp()
    encoded = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


def profiles_stamp() -> list:
    """The highest profile id, the latest change and how many deletions there have been.

    New profiles raise the id, changed ones the latest ``updated_at`` (imports and
    ``Profile.save`` stamp it), and a trigger counts deletions: three index or primary-key
    look-ups instead of counting every profile.
    """
    profiles, deletions = Profile._meta.db_table, ProfileDeletions._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT max(id) FROM {profiles}), (SELECT max(updated_at) FROM {profiles}),"
            f" (SELECT count FROM {deletions} WHERE id = 1)"
        )
        return list(cursor.fetchone())


@transaction.atomic
def rematerialise(segment: Segment, *, now: datetime | None = None) -> RefreshOutcome:
    """Replace the segment's stored members with the profiles its rules match.

    Joiners are inserted and leavers deleted; members who stay are not touched, so the
    table does not churn on a refresh that changes little. When the inputs did not change
    since the last refresh, nothing is written at all. Raises RuleError.
    """
    rules = validate(segment.rules)
    today = refresh_day(now)
    fingerprint = inputs_fingerprint(rules, today)
    if (
        fingerprint == segment.inputs_fingerprint
        and segment.status == Segment.Status.ACTIVE
        and segment.last_refreshed_at is not None
    ):
        return RefreshOutcome(segment.member_count, 0, 0, True, fingerprint)

    member_table = SegmentMember._meta.db_table
    matching_sql, matching_params = _matching_ids(rules, today).query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Lets the anti-join and the conflict check hash a million ids in memory.
            cursor.execute("SET LOCAL work_mem = '128MB'")
        cursor.execute(
            f"DELETE FROM {member_table} WHERE segment_id = %s AND NOT EXISTS ("
            f"SELECT 1 FROM ({matching_sql}) AS matching"
            f" WHERE matching.id = {member_table}.profile_id)",
            (segment.pk, *matching_params),
        )
        left = max(cursor.rowcount, 0)
        # An anti-join rather than ON CONFLICT: a third faster, as no row is inserted
        # speculatively. Two refreshes of one segment at once (the refresh state prevents it)
        # would meet the primary key and fail the later one, not store a member twice.
        cursor.execute(
            f"INSERT INTO {member_table} (segment_id, profile_id) "
            f"SELECT %s, matching.id FROM ({matching_sql}) AS matching WHERE NOT EXISTS ("
            f"SELECT 1 FROM {member_table} AS member"
            " WHERE member.segment_id = %s AND member.profile_id = matching.id) "
            # In key order, the primary-key index grows at its right edge instead of at random.
            "ORDER BY matching.id",
            (segment.pk, *matching_params, segment.pk),
        )
        joined = max(cursor.rowcount, 0)
        cursor.execute(f"SELECT count(*) FROM {member_table} WHERE segment_id = %s", (segment.pk,))
        (count,) = cursor.fetchone()
        # Members whose profile was deleted since the last refresh left with it (the rows went
        # by cascade, so the DELETE above did not see them): the counts tell how many.
        left = max(left, segment.member_count + joined - count)
        if connection.vendor == "postgresql" and (joined or left):
            # Exports join this table right away; stale statistics would mislead their plans.
            cursor.execute(f"ANALYZE {member_table}")
    return RefreshOutcome(count, joined, left, False, fingerprint)
