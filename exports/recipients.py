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
from django.db.models.functions import MD5, Cast, Coalesce, Concat, Lower, RowNumber, Trim

from exports.models import Export, ExportRun, ExportRunFailure, ExportRunRecipient, SyncState
from segments.models import Profile, SegmentMember
from segments.rules import BUILTIN_FIELDS

# Deliberately loose: the service validates strictly and reports per record; this only keeps
# out what can never be an address.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

SKIP_MISSING_EMAIL = "missing_email"
SKIP_INVALID_EMAIL = "invalid_email"
SKIP_DUPLICATE_EMAIL = "duplicate_email"
SKIP_OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class RecipientCounts:
    members: int
    recipients: int
    skipped: int
    unchanged: int = 0
    to_remove: int = 0


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
    whether it is usable, its rank among the members sharing that email, and a hash of the
    fields sent. Compared with the export's sync state, each usable member is then added,
    updated, left alone (unchanged) or skipped (opted out at the service); in mirror mode the
    addresses that left the segments are queued for removal after every add and update.
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
    members = members.annotate(
        fields_hash=MD5(
            Concat(
                F("normalised_email"),
                Value("\x1f"),
                F("mapped_first_name"),
                Value("\x1f"),
                F("mapped_last_name"),
                output_field=TextField(),
            )
        )
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
            "fields_hash",
        )
        .query.sql_with_params()
    )
    recipients = ExportRunRecipient._meta.db_table
    failures = ExportRunFailure._meta.db_table
    states = SyncState._meta.db_table
    resend = export.resend_next_run or run.retry_of_id is not None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("DROP TABLE IF EXISTS run_members")
        # What the service last confirmed for each address is joined in once, here.
        cursor.execute(
            "CREATE TEMP TABLE run_members AS SELECT m.*, s.state AS known_state,"
            f" s.fields_hash AS known_hash FROM ({members_sql}) AS m LEFT JOIN {states} s"
            " ON s.export_id = %s AND s.email = m.normalised_email"
            " AND m.usable = 1 AND m.email_rank = 1",
            (*params, export.pk),
        )
        if run.retry_of_id:
            # "Retry failed records": only the addresses the service refused in that run.
            cursor.execute(
                f"DELETE FROM run_members WHERE usable = 1 AND email_rank = 1 AND normalised_email "
                f"NOT IN (SELECT lower(email) FROM {failures} WHERE run_id = %s AND skipped = %s)",
                (run.retry_of_id, False),
            )
        cursor.execute(
            f"INSERT INTO {recipients} (run_id, position, profile_id, email, customer_id,"
            " first_name, last_name, action, fields_hash) "
            "SELECT %s, row_number() OVER (ORDER BY id), id, normalised_email, customer_id,"
            " mapped_first_name, mapped_last_name,"
            " CASE WHEN known_state IS NULL THEN 'add' WHEN known_state = %s THEN 'return'"
            " ELSE 'update' END, fields_hash "
            "FROM run_members "
            "WHERE usable = 1 AND email_rank = 1 AND (known_state IS NULL OR known_state = %s"
            " OR (known_state = %s AND (known_hash <> fields_hash OR %s)))",
            (
                run.pk,
                SyncState.State.REMOVED,
                SyncState.State.REMOVED,
                SyncState.State.IN_LIST,
                resend,
            ),
        )
        cursor.execute(
            f"INSERT INTO {failures} (run_id, customer_id, email, code, reason, skipped) "
            "SELECT %s, m.customer_id, substr(m.raw_email, 1, 320),"
            f" {_SKIP_CASE}, {_SKIP_CASE}, %s "
            "FROM run_members m "
            "WHERE m.usable = 0 OR m.email_rank > 1 OR m.known_state = %s ORDER BY m.id",
            (run.pk, *_SKIP_CODES, *_SKIP_REASONS, True, SyncState.State.OPTED_OUT),
        )
        cursor.execute(
            "SELECT count(*), "
            "coalesce(sum(CASE WHEN usable = 1 AND email_rank = 1 THEN 1 ELSE 0 END), 0) "
            "FROM run_members"
        )
        member_count, usable_count = cursor.fetchone()
        to_send = ExportRunRecipient.objects.filter(run=run).count()
        skipped = ExportRunFailure.objects.filter(run=run, skipped=True).count()
        to_remove = 0
        if export.sync_mode == Export.SyncMode.MIRROR and not run.retry_of_id:
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE run_members")  # for a hashed anti-join below
            cursor.execute(
                f"INSERT INTO {recipients} (run_id, position, profile_id, email, action,"
                " fields_hash, customer_id, first_name, last_name) "
                "SELECT %s, %s + row_number() OVER (ORDER BY s.email), 0, s.email, 'remove', '',"
                " '', '', '' "
                f"FROM {states} s WHERE s.export_id = %s AND s.state = %s AND NOT EXISTS ("
                "SELECT 1 FROM run_members m WHERE m.usable = 1 AND m.email_rank = 1"
                " AND m.normalised_email = s.email)",
                (run.pk, to_send, export.pk, SyncState.State.IN_LIST),
            )
            to_remove = cursor.rowcount
        cursor.execute("DROP TABLE run_members")
        if connection.vendor == "postgresql":
            # Fresh statistics, or the planner sorts the whole run for every page it reads.
            cursor.execute(f"ANALYZE {recipients}")
    return RecipientCounts(
        members=member_count,
        recipients=to_send,
        skipped=skipped,
        unchanged=usable_count - to_send - (skipped - (member_count - usable_count)),
        to_remove=to_remove,
    )


# Why a member is skipped: no address, an unusable one, one another member already has, or
# an address that opted out at the service (never re-subscribed, not retried every run).
_SKIP_CASE = (
    "CASE WHEN m.usable = 0 AND m.normalised_email = '' THEN %s WHEN m.usable = 0 THEN %s"
    " WHEN m.email_rank > 1 THEN %s ELSE %s END"
)
_SKIP_CODES = (SKIP_MISSING_EMAIL, SKIP_INVALID_EMAIL, SKIP_DUPLICATE_EMAIL, SKIP_OPTED_OUT)
_SKIP_REASONS = (
    "The profile has no email address.",
    "The email address is not valid.",
    "Another profile with the same email address is sent instead.",
    "The person opted out at the service; they are not sent again.",
)


class RecipientReader:
    """Reads a run's recipients page by page: one index range scan per page."""

    def __init__(self, run: ExportRun, size: int, *, removing: bool = False):
        self.run_id = run.pk
        self.size = size
        self.removing = removing
        self.sql = (
            "SELECT position, email, customer_id, first_name, last_name, action, fields_hash "
            f"FROM {ExportRunRecipient._meta.db_table} "
            "WHERE run_id = %s AND position > %s AND (action = 'remove') = %s "
            "ORDER BY position LIMIT %s"
        )

    def page(self, after_position: int) -> list[tuple]:
        """(position, email, customer id, first name, last name, action, hash) of the next
        recipients."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql, (self.run_id, after_position, self.removing, self.size))
            return cursor.fetchall()


def _mapped(name: str) -> Expression:
    """A mapped profile field as text, or an empty string when the export maps none."""
    if not name:
        return Value("")
    return Coalesce(field_value(name), Value(""))
