"""Who a run sends to: the union of the export's segments, de-duplicated by normalised email.

Computed once per run in set-based SQL and stored in ``ExportRunRecipient`` in a fixed order,
so the engine can stream it in batches and resume at a position. Every member that is not a
recipient is written to ``ExportRunFailure`` as skipped, with the reason: nobody is dropped
silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Case, Expression, F, IntegerField, TextField, Value, When, Window
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Lower, RowNumber, Trim

from exports.models import Export, ExportRun, ExportRunFailure, ExportRunRecipient
from segments.models import Profile, SegmentMember
from segments.rules import BUILTIN_FIELDS

# Deliberately loose: the service validates strictly and reports per record; this only keeps
# out what can never be an address.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

SKIP_MISSING_EMAIL = "missing_email"
SKIP_INVALID_EMAIL = "invalid_email"
SKIP_DUPLICATE_EMAIL = "duplicate_email"


@dataclass(frozen=True)
class RecipientCounts:
    members: int
    recipients: int
    skipped: int


def field_value(name: str) -> Expression:
    """A profile field (built-in column or JSON attribute) as text."""
    if name in BUILTIN_FIELDS:
        return F(name)
    return Cast(KeyTextTransform(name, "attributes"), TextField())


def members_of(export: Export):
    segment_ids = list(export.segments.values_list("pk", flat=True))
    return Profile.objects.filter(
        pk__in=SegmentMember.objects.filter(segment_id__in=segment_ids).values("profile_id")
    )


def _with_normalised_email(export: Export):
    return members_of(export).annotate(
        normalised_email=Lower(Trim(Coalesce(field_value(export.email_field), Value(""))))
    )


@transaction.atomic
def build_recipients(run: ExportRun) -> RecipientCounts:
    """Fill the run's recipients and skipped members; idempotent for a run (replaces both).

    One scan of the members fills a temporary table with each member's normalised email,
    whether it is usable, and its rank among the members sharing that email; recipients and
    skips are then read from that table.
    """
    export = run.export
    ExportRunRecipient.objects.filter(run=run).delete()
    ExportRunFailure.objects.filter(run=run, skipped=True).delete()
    members = _with_normalised_email(export).annotate(
        raw_email=Coalesce(field_value(export.email_field), Value("")),
        mapped_first_name=_mapped(export.first_name_field),
        mapped_last_name=_mapped(export.last_name_field),
        usable=Case(
            When(normalised_email__regex=EMAIL_PATTERN, then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        ),
        email_rank=Window(RowNumber(), partition_by=F("normalised_email"), order_by=F("pk").asc()),
    )
    members_sql, params = (
        members.order_by()
        .values(
            "id",
            "customer_id",
            "raw_email",
            "normalised_email",
            "usable",
            "email_rank",
            "mapped_first_name",
            "mapped_last_name",
        )
        .query.sql_with_params()
    )
    recipients = ExportRunRecipient._meta.db_table
    failures = ExportRunFailure._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("DROP TABLE IF EXISTS run_members")
        cursor.execute(f"CREATE TEMP TABLE run_members AS {members_sql}", params)
        cursor.execute(
            f"INSERT INTO {recipients} (run_id, position, profile_id, email, customer_id,"
            " first_name, last_name) "
            "SELECT %s, row_number() OVER (ORDER BY id), id, normalised_email, customer_id,"
            " mapped_first_name, mapped_last_name "
            "FROM run_members WHERE usable = 1 AND email_rank = 1",
            (run.pk,),
        )
        cursor.execute(
            f"INSERT INTO {failures} (run_id, customer_id, email, code, reason, skipped) "
            f"SELECT %s, customer_id, substr(raw_email, 1, 320), {_SKIP_CASE}, {_SKIP_CASE}, %s "
            "FROM run_members WHERE usable = 0 OR email_rank > 1 ORDER BY id",
            (run.pk, *_SKIP_CODES, *_SKIP_REASONS, True),
        )
        cursor.execute(
            "SELECT count(*), "
            "coalesce(sum(CASE WHEN usable = 1 AND email_rank = 1 THEN 1 ELSE 0 END), 0) "
            "FROM run_members"
        )
        member_count, recipient_count = cursor.fetchone()
        cursor.execute("DROP TABLE run_members")
        if connection.vendor == "postgresql":
            # Fresh statistics, or the planner sorts the whole run for every page it reads.
            cursor.execute(f"ANALYZE {recipients}")
    return RecipientCounts(
        members=member_count, recipients=recipient_count, skipped=member_count - recipient_count
    )


# Why a member is skipped: no address, an unusable one, or one another member already has.
_SKIP_CASE = (
    "CASE WHEN usable = 0 AND normalised_email = '' THEN %s WHEN usable = 0 THEN %s ELSE %s END"
)
_SKIP_CODES = (SKIP_MISSING_EMAIL, SKIP_INVALID_EMAIL, SKIP_DUPLICATE_EMAIL)
_SKIP_REASONS = (
    "The profile has no email address.",
    "The email address is not valid.",
    "Another profile with the same email address is sent instead.",
)


class RecipientReader:
    """Reads a run's recipients page by page: one index range scan per page."""

    def __init__(self, run: ExportRun, size: int):
        self.run_id = run.pk
        self.size = size
        self.sql = (
            "SELECT position, email, customer_id, first_name, last_name "
            f"FROM {ExportRunRecipient._meta.db_table} "
            "WHERE run_id = %s AND position > %s ORDER BY position LIMIT %s"
        )

    def page(self, after_position: int) -> list[tuple[int, str, str, str, str]]:
        """(position, email, customer id, first name, last name) of the next recipients."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql, (self.run_id, after_position, self.size))
            return cursor.fetchall()


def _mapped(name: str) -> Expression:
    """A mapped profile field as text, or an empty string when the export maps none."""
    if not name:
        return Value("")
    return Coalesce(field_value(name), Value(""))
