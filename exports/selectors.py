"""Reads on exports and their runs, for the pages (Data > Exports, Admin > System) and for the
connections and segments pages that show which exports use them."""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from config.translation import shown
from connections.models import Connection
from connections.selectors import connections_usable_by
from connections.types import registry
from core.consent import Channel, ConsentState
from core.listing import Sorting, search_words
from exports.models import Exclusion, Export, ExportRun, ExportRunFailure, RefreshSchedule
from exports.permissions import CHANGE_EXPORT, NOT_YOUR_CONNECTION, RUN_EXPORT
from exports.recipients import (
    EXCLUDED_ADDRESS,
    EXCLUDED_CONSENT,
    EXCLUDED_DOMAIN,
    EXCLUDED_REASONS,
    EXCLUDED_SEGMENT,
    SKIP_DUPLICATE_EMAIL,
    SKIP_INVALID_EMAIL,
    SKIP_MISSING_EMAIL,
    SKIP_OPTED_OUT,
    SKIP_REASONS,
)
from segments.models import ConsentRecord, Segment

RECENT_RUNS = 20


# Who may do what -------------------------------------------------------------------------------


def usable_connection_ids(user) -> set[int]:
    return set(connections_usable_by(user).values_list("pk", flat=True))


def export_writable_by(user, export: Export, usable: set[int] | None = None) -> bool:
    """Whether the user may change, run or remove the export: contributors only when its
    connection is one they may use (or it has none). The role is checked by the view."""
    if export.connection_id is None:
        return True
    if usable is None:
        usable = usable_connection_ids(user)
    return export.connection_id in usable


def export_write_refusal(user, export: Export) -> str | None:
    """None when the user may change, run or remove the export as far as its connection goes;
    else why not, in words (the page's 403 and the API's problem details)."""
    if export_writable_by(user, export):
        return None
    return str(NOT_YOUR_CONNECTION % {"connection": export.connection})


def permission_label(user, export: Export, usable: set[int]) -> str:
    """The list's "Your permissions" column."""
    if not CHANGE_EXPORT.allows(user) or not export_writable_by(user, export, usable):
        return _("View only")
    if export.connection_id is None or not RUN_EXPORT.allows(user):
        return _("Edit")
    return _("Edit and run")


# The exports list ------------------------------------------------------------------------------


def _latest_run() -> QuerySet[ExportRun]:
    """The export's latest run; a run awaiting approval first, whatever was recorded after it
    (scheduled runs skipped meanwhile), since it holds the export until someone decides."""
    waiting_first = Case(
        When(status=ExportRun.Status.AWAITING_APPROVAL, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return ExportRun.objects.filter(export=OuterRef("pk")).order_by(
        waiting_first, "-created_at", "-id"
    )


def exports_annotated() -> QuerySet[Export]:
    """Exports with their connection, segments and their latest run's status and time."""
    return (
        Export.objects.select_related("connection")
        .prefetch_related("segments")
        .annotate(
            last_status=Subquery(_latest_run().values("status")[:1]),
            last_run_at=Subquery(
                _latest_run()
                .annotate(at=Coalesce("finished_at", "started_at", "created_at"))
                .values("at")[:1]
            ),
        )
    )


#: Data > Exports' columns that sort.
EXPORT_SORTING = Sorting(
    keys={
        "name": ("display_name",),
        "type": ("connection__kind", "display_name"),
        "connection": ("connection__display_name", "display_name"),
        "status": ("last_status", "display_name"),
        "last_run": ("last_run_at",),
        "schedule": ("schedule_enabled", "display_name"),
    },
    default="name",
    nullable=frozenset(
        {"connection__kind", "connection__display_name", "last_status", "last_run_at"}
    ),
)


def export_search(query: str, sort: str = "") -> QuerySet[Export]:
    """Exports whose name, connection name or connection type contains every word of ``query``,
    in the order ``sort`` (one of ``EXPORT_SORTING``'s keys) names."""
    exports = exports_annotated()
    for term in search_words(query):
        kinds = [kind for kind, label in registry.choices() if term.lower() in str(label).lower()]
        exports = exports.filter(
            Q(display_name__icontains=term)
            | Q(connection__display_name__icontains=term)
            | Q(connection__kind__in=kinds)
        )
    return EXPORT_SORTING.apply(exports, sort)


def export_list(*, user, query: str = "", sort: str = "") -> list[Export]:
    """The rows of Data > Exports. Each export carries ``last_status_label``, ``can_write``,
    ``can_run``, ``is_running`` and ``permission_label`` for this user."""
    usable = usable_connection_ids(user)
    may_change = CHANGE_EXPORT.allows(user)
    may_run = RUN_EXPORT.allows(user)
    rows: list[Any] = list(export_search(query, sort))  # each row gains this page's attributes
    for export in rows:
        export.last_status_label = status_label(export.last_status)
        export.can_write = may_change and export_writable_by(user, export, usable)
        export.can_run = may_run and export.connection_id is not None and export.can_write
        # Run is not offered while a run is active (Cancel is, instead).
        export.is_running = export.last_status in ExportRun.ACTIVE_STATUSES
        export.permission_label = permission_label(user, export, usable)
    return rows


def status_label(status: str | None) -> str:
    if not status:
        return _("Never run")
    return str(ExportRun.Status(status).label)


# One export ------------------------------------------------------------------------------------


def export_runs(export: Export, limit: int = RECENT_RUNS) -> list[ExportRun]:
    return list(export.runs.select_related("triggered_by").order_by("-created_at", "-id")[:limit])


def export_settings(export: Export) -> dict[str, Any]:
    """What a user set on the export (``Export.SETTINGS_FIELDS``), as ``export_save`` takes it:
    related rows as instances, many-to-many ones as a list."""
    settings: dict[str, Any] = {}
    for name in Export.SETTINGS_FIELDS:
        value = getattr(export, name)
        settings[name] = list(value.all()) if Export._meta.get_field(name).many_to_many else value
    return settings


def exports_using(connection: Connection) -> QuerySet[Export]:
    """The exports that send through this connection (removing the connection asks what
    happens to them)."""
    return Export.objects.filter(connection=connection).order_by("display_name", "id")


def schedule_time_zone_name() -> str | None:
    """The refresh schedule's time zone, without creating the schedule; relative dates in
    segment rules count days in it (``segments.membership.count_days_in``)."""
    return RefreshSchedule.objects.filter(pk=1).values_list("time_zone", flat=True).first()


# Progress --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunProgress:
    """What **Progress details** shows for one run."""

    run: ExportRun
    percent: int
    per_second: float | None
    eta_seconds: int | None


def run_progress(run: ExportRun, now: dt.datetime | None = None) -> RunProgress:
    """Percent done, profiles per second (sent and failed since the run started) and, while it
    runs, the time left at the rate of its last moments (``recent_per_second``), or at the
    average rate until the run has measured one."""
    now = now or timezone.now()
    delivered = run.sent + run.failed
    per_second = eta = None
    if run.started_at:
        elapsed = ((run.finished_at or now) - run.started_at).total_seconds()
        if elapsed > 0 and delivered:
            per_second = delivered / elapsed
    current = run.recent_per_second if run.recent_per_second is not None else per_second
    if run.status == ExportRun.Status.RUNNING and current and run.recipients_ready:
        remaining = max(0, run.to_send - delivered)
        eta = round(remaining / current)
    return RunProgress(run=run, percent=run.percent, per_second=per_second, eta_seconds=eta)


# Failures --------------------------------------------------------------------------------------


def failure_label(code: str) -> str:
    """Our own skip codes in words; the services' codes are shown as they are."""
    labels = {
        SKIP_MISSING_EMAIL: _("No email address"),
        SKIP_INVALID_EMAIL: _("Not a valid email address"),
        SKIP_DUPLICATE_EMAIL: _("Duplicate email address"),
        SKIP_OPTED_OUT: _("Opted out at the service"),
        EXCLUDED_ADDRESS: _("Excluded address"),
        EXCLUDED_DOMAIN: _("Excluded domain"),
        EXCLUDED_SEGMENT: _("In an excluded segment"),
        EXCLUDED_CONSENT: _("Unsubscribed or bounced at a connection"),
    }
    return labels.get(code, code)


def failure_reason(code: str, reason: str, skipped: bool) -> str:
    """Why a profile was not delivered, in the reader's language when the words are ours (a
    skip, or a refusal our client put in words); the services' own words are shown as sent."""
    if skipped and code in SKIP_REASONS:
        return _(SKIP_REASONS[code])
    if skipped and code in EXCLUDED_REASONS:
        return _(EXCLUDED_REASONS[code])
    return shown(reason)


#: The run page's failure filters (``?show=``): the service's refusals, all of our skips, and
#: each kind of skip. No filter shows every failure.
REFUSED, SKIPPED = "refused", "skipped"
SKIP_CODES = (SKIP_MISSING_EMAIL, SKIP_INVALID_EMAIL, SKIP_DUPLICATE_EMAIL, SKIP_OPTED_OUT)
FAILURE_FILTERS: dict[str, Q] = {
    REFUSED: Q(skipped=False),
    SKIPPED: Q(skipped=True),
    **{code: Q(skipped=True, code=code) for code in SKIP_CODES},
}


@dataclass(frozen=True)
class FailureFilter:
    """One tab of the run page's failures: its ``?show=`` value ("" for all), label, count."""

    key: str
    label: str
    count: int


def failure_filter(value: str | None) -> str:
    """The ``?show=`` value as a known filter, or "" (every failure)."""
    return value if value in FAILURE_FILTERS else ""


def run_failure_filters(run: ExportRun) -> list[FailureFilter]:
    """The tabs of a run's failures with their counts, in one aggregate: all, refused by the
    service, skipped by us, then each kind of skip that happened."""
    counted = run.failures.aggregate(
        count_all=Count("id"),
        **{f"count_{key}": Count("id", filter=q) for key, q in FAILURE_FILTERS.items()},
    )
    count = {key.removeprefix("count_"): value for key, value in counted.items()}
    tabs = [
        FailureFilter("", _("All"), count["all"]),
        FailureFilter(REFUSED, _("Refused by the service"), count[REFUSED]),
        FailureFilter(SKIPPED, _("Skipped by us"), count[SKIPPED]),
    ]
    tabs += [FailureFilter(code, failure_label(code), count[code]) for code in SKIP_CODES]
    return [tab for tab in tabs if tab.count or tab.key in ("", REFUSED, SKIPPED)]


def run_failures(run: ExportRun, show: str = "") -> QuerySet[ExportRunFailure]:
    """The run's failures, all or those of one filter (``FAILURE_FILTERS``)."""
    failures = run.failures.order_by("id")
    if show:
        failures = failures.filter(FAILURE_FILTERS[show])
    return failures


def run_failures_table(
    run: ExportRun, show: str = ""
) -> tuple[str, list[str], Iterator[list[object]]]:
    """The run's failures (all, or one filter's) as a CSV file: its name, its header and its
    rows, read in chunks as they are written (the run page's **Download CSV** and the API's
    ``failures.csv``)."""
    failures = run_failures(run, show).values_list(
        "customer_id", "email", "code", "reason", "skipped", "warning"
    )
    labels: dict[str, str] = {}

    def rows() -> Iterator[list[object]]:
        for customer_id, email, code, reason, skipped, warning in failures.iterator(
            chunk_size=2000
        ):
            if code not in labels:
                labels[code] = failure_label(code)
            reason = failure_reason(code, reason, skipped)
            yield [
                customer_id,
                email,
                code,
                reason,
                labels[code],
                "yes" if skipped else "no",
                "yes" if warning else "no",
            ]

    # ``warning``: sent, with a value the service had to change (``ExportRunFailure.warning``).
    suffix = f"-{show.replace('_', '-')}" if show else ""
    return (
        f"export-run-{run.pk}-failures{suffix}.csv",
        ["customer_id", "email", "code", "reason", "explanation", "skipped", "warning"],
        rows(),
    )


# Admin > System > Status -----------------------------------------------------------------------


class TaskKind(enum.StrEnum):
    """What a row of the Status tab follows (and the ``kind`` in its detail's URL)."""

    SEGMENT = "segment"
    EXPORT = "export"


@dataclass(frozen=True)
class StatusRow:
    kind: TaskKind
    pk: int
    name: str
    task: str
    status: str
    status_label: str
    updated_at: dt.datetime | None


def status_rows() -> list[StatusRow]:
    """Segment refreshes, then export runs: name, status and when it last changed."""
    rows = []
    for segment in Segment.objects.order_by("name"):
        refreshing = segment.is_refreshing
        rows.append(
            StatusRow(
                kind=TaskKind.SEGMENT,
                pk=segment.pk,
                name=segment.name,
                task=_("Segment refresh"),
                status=segment.refresh_state if refreshing else segment.status,
                status_label=(
                    segment.get_refresh_state_display()
                    if refreshing
                    else segment.get_status_display()
                ),
                updated_at=segment.last_refreshed_at or segment.updated_at,
            )
        )
    latest = _latest_run()
    exports = Export.objects.annotate(
        last_status=Subquery(latest.values("status")[:1]),
        last_change=Subquery(
            latest.annotate(
                at=Coalesce("finished_at", "heartbeat_at", "started_at", "created_at")
            ).values("at")[:1]
        ),
    ).order_by("display_name", "id")
    for export in exports:
        rows.append(
            StatusRow(
                kind=TaskKind.EXPORT,
                pk=export.pk,
                name=export.display_name,
                task=_("Export run"),
                status=export.last_status or "never",
                status_label=status_label(export.last_status),
                updated_at=export.last_change or export.updated_at,
            )
        )
    return rows


def status_active() -> bool:
    """Whether anything on the Status tab is moving, so that the page keeps itself current."""
    return (
        ExportRun.objects.filter(status__in=ExportRun.ACTIVE_STATUSES).exists()
        or Segment.objects.exclude(refresh_state=Segment.RefreshState.IDLE).exists()
    )


# The refresh schedule --------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshState:
    """Whether anything runs on schedule, and when the next scheduled refresh starts."""

    enabled: bool
    next_at: dt.datetime | None


def refresh_state(now: dt.datetime | None = None) -> RefreshState:
    schedule = RefreshSchedule.load()
    upcoming = next_refreshes(schedule, after=now, count=1)
    return RefreshState(enabled=bool(upcoming), next_at=upcoming[0] if upcoming else None)


def next_refreshes(
    schedule: RefreshSchedule, *, after: dt.datetime | None = None, count: int = 1
) -> list[dt.datetime]:
    """The next ``count`` times the scheduled refresh starts after ``after`` (now), in the
    schedule's time zone, as beat runs it (``exports.schedule.apply_to_beat``); none when it
    is off or has no time."""
    if not schedule.enabled or not schedule.times:
        return []
    zone = zoneinfo.ZoneInfo(schedule.time_zone)
    start = (after or timezone.now()).astimezone(zone)
    weekly = schedule.frequency == RefreshSchedule.Frequency.WEEKLY
    times = sorted(dt.time.fromisoformat(text) for text in schedule.times)
    found: list[dt.datetime] = []
    for offset in range(8 * count + 1):  # a week holds every weekday at least once
        day = start.date() + dt.timedelta(days=offset)
        if weekly and day.isoweekday() not in schedule.weekdays:
            continue
        for moment in (dt.datetime.combine(day, at, tzinfo=zone) for at in times):
            if moment > start:
                found.append(moment)
                if len(found) == count:
                    return found
    return found


@dataclass(frozen=True)
class RunAllExport:
    """An export **Run all** would run, and its run that awaits approval if it has one (then
    Run all does not queue it: that run must be approved or discarded first)."""

    export: Export
    waiting_run_id: int | None = None


def exports_to_run_all(user) -> list[RunAllExport]:
    """What **Run all** runs for this user: every export with a schedule whose connection the
    user may use (the confirmation names them), each with its run awaiting approval, if any."""
    exports = list(
        Export.objects.filter(
            schedule_enabled=True, connection__in=connections_usable_by(user)
        ).order_by("display_name", "id")
    )
    waiting = dict(
        ExportRun.objects.filter(
            export__in=exports, status=ExportRun.Status.AWAITING_APPROVAL
        ).values_list("export_id", "pk")
    )
    return [RunAllExport(export, waiting.get(export.pk)) for export in exports]


# Admin > Exclusions ----------------------------------------------------------------------------


def exclusion_list(*, kind: str = "", search: str = "") -> QuerySet[Exclusion]:
    """The exclusions, segments first then domains then addresses (by value), optionally of
    one kind and containing ``search`` (in the address, domain or segment name)."""
    exclusions = Exclusion.objects.select_related("segment", "created_by")
    if kind:
        exclusions = exclusions.filter(kind=kind)
    if search:
        exclusions = exclusions.filter(
            Q(value__icontains=search) | Q(segment__name__icontains=search)
        )
    return exclusions.order_by("-kind", "value", "segment__name", "id")


def consent_exclusion_counts() -> list[tuple[str, str | Promise, int]]:
    """How many addresses the consent records exclude now, per state (value, label, count),
    every state listed: an address counts once under each state it has a record of. Under the
    per-connection rule they are excluded from their connections' exports only (and from every
    export when the connection was deleted)."""
    counts = dict(
        ConsentRecord.objects.filter(channel=Channel.EMAIL)
        .order_by()
        .values_list("state")
        .annotate(count=Count("email", distinct=True))
        .values_list("state", "count")
    )
    return [(state, label, counts.get(state, 0)) for state, label in ConsentState.choices]


def exclusion_counts() -> dict[str, int]:
    """How many exclusions of each kind there are."""
    counts = dict(
        Exclusion.objects.order_by()
        .values_list("kind")
        .annotate(count=Count("id"))
        .values_list("kind", "count")
    )
    return {kind: counts.get(kind, 0) for kind in Exclusion.Kind.values}


# The pre-flight guard ---------------------------------------------------------------------------


def run_awaiting_approval(export: Export) -> ExportRun | None:
    """The export's run that awaits approval, if it has one (it holds the export)."""
    return export.runs.filter(status=ExportRun.Status.AWAITING_APPROVAL).first()


def run_guard(run: ExportRun) -> dict[str, Any] | None:
    """What a run's page shows of the pre-flight guard: for a run awaiting approval, why, the
    list's size now and after, the first addresses it would remove (bounded) and whether the
    service bills by contacts; None for any other run that never measured its list."""
    from exports import guard
    from exports.recipients import REMOVE, RecipientTable

    if run.list_size is None:
        return None
    sample: list[str] = []
    if run.is_awaiting_approval and run.to_remove:
        table = RecipientTable(run)
        if table.exists(members=False):
            rows = table.sample((REMOVE,), guard.SAMPLE_SIZE)
            sample = [row["email"] for row in rows]
    return {
        "reasons": guard.shown_reasons(run.held_because),
        "list_size": run.list_size,
        "adds": run.to_add,
        "removals": run.to_remove,
        "list_size_after": run.list_size_after,
        "sample": sample,
        "more": max(0, run.to_remove - len(sample)) if sample else 0,
        "bills_by_contacts": bills_by_contacts(run.export),
        "decided_by": _user_name(run.decided_by) if run.decided_at else "",
    }


def _user_name(user) -> str:
    if user is None:
        return _("A removed user")
    return user.get_full_name() or user.get_username()


def bills_by_contacts(export: Export) -> bool:
    """Whether the export's service bills by the contacts its list holds (the backend says)."""
    if export.connection is None:
        return False
    return registry.backend_class(export.connection.kind).bills_by_contacts
