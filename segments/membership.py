"""Materialise a segment's members with set-based SQL: an INSERT ... SELECT and an anti-join."""

from __future__ import annotations

from django.db import connection, transaction

from segments.models import Profile, ProfileField, Segment, SegmentMember
from segments.rules import compile_rules, validate


def matching_profiles(segment: Segment):
    """The profiles that match the segment's rules now (a lazy queryset, one SQL query).

    The stored rules are validated again: a field they name may have left the catalogue.
    Raises RuleError.
    """
    known_fields = ProfileField.objects.values_list("name", flat=True)
    return Profile.objects.filter(compile_rules(validate(segment.rules, known_fields)))


def estimate_size(rules: dict) -> int:
    """How many profiles the (validated) rules match right now."""
    return Profile.objects.filter(compile_rules(rules)).count()


@transaction.atomic
def rematerialise(segment: Segment) -> int:
    """Replace the segment's stored members with the profiles its rules match; return the count.

    Joiners are inserted and leavers deleted; members who stay are not touched, so the
    table does not churn on a refresh that changes little.
    """
    member_table = SegmentMember._meta.db_table
    matching_sql, matching_params = matching_profiles(segment).values("id").query.sql_with_params()
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
        # "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT.
        cursor.execute(
            f"INSERT INTO {member_table} (segment_id, profile_id) "
            f"SELECT %s, matching.id FROM ({matching_sql}) AS matching WHERE true "
            # In key order, the primary-key index grows at its right edge instead of at random.
            "ORDER BY matching.id ON CONFLICT DO NOTHING",
            (segment.pk, *matching_params),
        )
        cursor.execute(f"SELECT count(*) FROM {member_table} WHERE segment_id = %s", (segment.pk,))
        (count,) = cursor.fetchone()
        if connection.vendor == "postgresql":
            # Exports join this table right away; stale statistics would mislead their plans.
            cursor.execute(f"ANALYZE {member_table}")
    return count
