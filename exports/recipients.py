"""Who a run sends to: the union of the export's segments, de-duplicated by normalised email.

Computed once per run in set-based SQL and stored in ``ExportRunRecipient`` in a fixed order,
so the engine can stream it in batches and resume at a position. Every member that is not a
recipient is written to ``ExportRunFailure`` as skipped, with the reason: nobody is dropped
silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Case, CharField, Expression, F, Min, Q, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Lower, Trim

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
    """Fill the run's recipients and skipped members; idempotent for a run (replaces both)."""
    export = run.export
    ExportRunRecipient.objects.filter(run=run).delete()
    ExportRunFailure.objects.filter(run=run, skipped=True).delete()
    members = _with_normalised_email(export)
    valid = Q(normalised_email__regex=EMAIL_PATTERN)

    chosen_sql, chosen_params = (
        members.filter(valid)
        .order_by()
        .values("normalised_email")
        .annotate(profile_id=Min("pk"))
        .values("normalised_email", "profile_id")
        .query.sql_with_params()
    )
    recipient_table = ExportRunRecipient._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(
            f"INSERT INTO {recipient_table} (run_id, position, profile_id, email) "
            f"SELECT %s, row_number() OVER (ORDER BY chosen.profile_id), chosen.profile_id, "
            f"chosen.normalised_email FROM ({chosen_sql}) AS chosen",
            (run.pk, *chosen_params),
        )

    unusable = members.exclude(valid).annotate(
        code=Case(
            When(normalised_email="", then=Value(SKIP_MISSING_EMAIL)),
            default=Value(SKIP_INVALID_EMAIL),
            output_field=CharField(),
        ),
        reason=Case(
            When(normalised_email="", then=Value("The profile has no email address.")),
            default=Value("The email address is not valid."),
            output_field=CharField(),
        ),
    )
    _insert_skipped(run, unusable, email=field_value(export.email_field))

    duplicates = (
        members.filter(valid)
        .exclude(pk__in=ExportRunRecipient.objects.filter(run=run).values("profile_id"))
        .annotate(
            code=Value(SKIP_DUPLICATE_EMAIL),
            reason=Value("Another profile with the same email address is sent instead."),
        )
    )
    _insert_skipped(run, duplicates, email=F("normalised_email"))

    return RecipientCounts(
        members=members_of(export).count(),
        recipients=ExportRunRecipient.objects.filter(run=run).count(),
        skipped=ExportRunFailure.objects.filter(run=run, skipped=True).count(),
    )


def _insert_skipped(run: ExportRun, profiles, *, email: Expression) -> None:
    source_sql, params = (
        profiles.annotate(skipped_email=Coalesce(email, Value("")))
        .order_by()
        .values("customer_id", "skipped_email", "code", "reason")
        .query.sql_with_params()
    )
    failure_table = ExportRunFailure._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {failure_table} (run_id, customer_id, email, code, reason, skipped) "
            f"SELECT %s, s.customer_id, substr(s.skipped_email, 1, 320), s.code, s.reason, %s "
            f"FROM ({source_sql}) AS s",
            (run.pk, True, *params),
        )


def recipient_page(run: ExportRun, after_position: int, size: int) -> list[dict]:
    """The next recipients after a position, with the profile fields the export maps."""
    export = run.export
    values = {
        "first_name_value": field_value(export.first_name_field) if export.first_name_field else Value(""),
        "last_name_value": field_value(export.last_name_field) if export.last_name_field else Value(""),
    }
    rows = (
        ExportRunRecipient.objects.filter(run=run, position__gt=after_position)
        .order_by("position")
        .annotate(
            customer_id=F("profile__customer_id"),
            **{name: Coalesce(_on_profile(expression), Value("")) for name, expression in values.items()},
        )
        .values("position", "email", "customer_id", *values)[:size]
    )
    return list(rows)


def _on_profile(expression: Expression) -> Expression:
    """Re-root a Profile field expression at ``profile__`` for a query on recipients."""
    if isinstance(expression, F):
        return F(f"profile__{expression.name}")
    if isinstance(expression, Cast):
        key = expression.source_expressions[0]
        return Cast(KeyTextTransform(key.key_name, "profile__attributes"), TextField())
    return expression
