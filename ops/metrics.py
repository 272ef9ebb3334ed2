"""``/metrics``: computed when scraped, from the database and the shared cache, so that every
web process answers the same whichever process did the work."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from config.celery_app import app as celery_app
from connections.types import registry as destination_types
from core import api_calls
from exports.models import ExportRun
from ops.signals import LAST_SCHEDULED_REFRESH_KEY

logger = logging.getLogger(__name__)

PREFIX = "audience_relay"
#: Upper bounds (seconds) of the run duration histogram: a second to four hours.
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600)
NO_DESTINATION = "none"  # a run whose export lost its connection


def render() -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    # The classic text format (0.0.4): every Prometheus version, 2.x included, reads it.
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4


class DatabaseCollector:
    def collect(self):
        yield from _runs()
        yield _run_durations()
        yield from _api_calls()
        yield _queue_depth()
        yield from _scheduled_success()


def _destination(kind: str | None) -> str:
    return kind or NO_DESTINATION


def _runs():
    runs = GaugeMetricFamily(
        f"{PREFIX}_export_runs", "Export runs in the database", labels=["status", "destination"]
    )
    profiles = GaugeMetricFamily(
        f"{PREFIX}_export_profiles",
        "Profiles of every export run, by outcome: sent, failed (refused) or skipped",
        labels=["outcome", "destination"],
    )
    for status in ExportRun.Status.values:
        for kind in destination_types.TYPES:
            runs.add_metric([status, kind], 0)
    rows = (
        ExportRun.objects.values("status", kind=F("export__connection__kind"))
        .annotate(count=Count("id"), sent=Sum("sent"), failed=Sum("failed"), skipped=Sum("skipped"))
        .order_by()
    )
    totals: dict[tuple[str, str], int] = {}
    for row in rows:
        destination = _destination(row["kind"])
        runs.add_metric([row["status"], destination], row["count"])
        for outcome in ("sent", "failed", "skipped"):
            key = (outcome, destination)
            totals[key] = totals.get(key, 0) + (row[outcome] or 0)
    for (outcome, destination), count in sorted(totals.items()):
        profiles.add_metric([outcome, destination], count)
    yield runs
    yield profiles


def _run_durations() -> HistogramMetricFamily:
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    bounds = {
        f"le_{bound}": Count("id", filter=Q(took__lte=timedelta(seconds=bound)))
        for bound in DURATION_BUCKETS
    }
    rows = (
        ExportRun.objects.filter(started_at__isnull=False, finished_at__isnull=False)
        .annotate(took=duration)
        .values(kind=F("export__connection__kind"))
        .annotate(count=Count("id"), total=Sum("took"), **bounds)
        .order_by()
    )
    histogram = HistogramMetricFamily(
        f"{PREFIX}_export_run_duration_seconds",
        "How long finished export runs took, from start to end",
        labels=["destination"],
    )
    for row in rows:
        buckets = [(str(float(bound)), row[f"le_{bound}"]) for bound in DURATION_BUCKETS]
        buckets.append(("+Inf", row["count"]))
        total = row["total"].total_seconds() if row["total"] else 0.0
        histogram.add_metric([_destination(row["kind"])], buckets, total)
    return histogram


def _api_calls():
    destinations = [*destination_types.TYPES, api_calls.UNKNOWN_DESTINATION]
    api_calls.flush()
    counts = api_calls.totals(destinations)
    calls = GaugeMetricFamily(
        f"{PREFIX}_api_calls", "API calls answered by each destination", labels=["destination"]
    )
    limited = GaugeMetricFamily(
        f"{PREFIX}_api_rate_limited",
        "API calls a destination answered with 429 Too Many Requests",
        labels=["destination"],
    )
    for destination in destinations:
        calls.add_metric([destination], counts[(destination, api_calls.CALLS)])
        limited.add_metric([destination], counts[(destination, api_calls.RATE_LIMITED)])
    yield calls
    yield limited


def _queue_depth() -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        f"{PREFIX}_queue_depth", "Tasks waiting in the broker's queue", labels=["queue"]
    )
    queue = celery_app.conf.task_default_queue
    try:
        with celery_app.connection_for_read() as broker:
            broker.ensure_connection(max_retries=1, timeout=3)
            declared = broker.default_channel.queue_declare(queue=queue, passive=True)
            gauge.add_metric([queue], declared.message_count)
    except Exception as error:
        # A queue nobody has declared yet holds nothing; an unreachable broker shows in /readyz.
        logger.info("Queue depth of %s unknown (%s)", queue, type(error).__name__)
        gauge.add_metric([queue], 0)
    return gauge


def _scheduled_success():
    refresh = GaugeMetricFamily(
        f"{PREFIX}_last_scheduled_refresh_success_timestamp_seconds",
        "Unix time the last scheduled refresh finished with every segment refreshed",
    )
    refresh.add_metric([], float(cache.get(LAST_SCHEDULED_REFRESH_KEY) or 0))
    yield refresh
    runs = GaugeMetricFamily(
        f"{PREFIX}_last_scheduled_run_success_timestamp_seconds",
        "Unix time the last scheduled export run to each destination finished successfully",
        labels=["destination"],
    )
    rows = (
        ExportRun.objects.filter(
            trigger=ExportRun.Trigger.SCHEDULE, status=ExportRun.Status.SUCCEEDED
        )
        .values(kind=F("export__connection__kind"))
        .annotate(last=Max("finished_at"))
        .order_by()
    )
    for row in rows:
        if row["last"]:
            runs.add_metric([_destination(row["kind"])], row["last"].timestamp())
    yield runs
