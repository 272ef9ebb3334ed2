"""/metrics: Prometheus text for a scraper with METRICS_TOKEN, computed from the database and
the shared cache when scraped."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from django.core.cache import cache
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from core import api_calls
from exports.models import Export, ExportRun
from exports.tasks import scheduled_refresh
from ops.signals import LAST_SCHEDULED_REFRESH_KEY
from tests.connections.factories import ConnectionFactory

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-9f2c"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    api_calls.flush()
    keys = [
        api_calls.cache_key(destination, kind)
        for destination in ("autopilot", "campaign_monitor", api_calls.UNKNOWN_DESTINATION)
        for kind in (api_calls.CALLS, api_calls.RATE_LIMITED)
    ]
    cache.delete_many([*keys, LAST_SCHEDULED_REFRESH_KEY])


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_without_a_configured_token_the_endpoint_does_not_exist(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"]
)
def test_a_scrape_without_the_right_bearer_token_is_refused(client, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"audience_relay" not in response.content


def test_a_logged_in_administrator_without_the_token_is_refused(as_alice):
    assert as_alice.get("/metrics").status_code == 401


def make_run(export, status, *, seconds=None, trigger="user", **counts):
    started = timezone.now() - timedelta(hours=1)
    return ExportRun.objects.create(
        export=export,
        status=status,
        trigger=trigger,
        started_at=started if seconds is not None else None,
        finished_at=started + timedelta(seconds=seconds) if seconds is not None else None,
        **counts,
    )


def test_runs_profiles_and_durations_come_from_the_database(client):
    autopilot = Export.objects.create(
        display_name="A", connection=ConnectionFactory(), list_id="l1"
    )
    monitor = Export.objects.create(
        display_name="M", connection=ConnectionFactory(campaign_monitor=True), list_id="l2"
    )
    make_run(autopilot, "succeeded", seconds=3, sent=10, skipped=2)
    make_run(autopilot, "completed_with_warnings", seconds=100, sent=5, failed=4)
    make_run(autopilot, "queued")
    make_run(monitor, "failed", seconds=0.5, failed=1, trigger="schedule")
    finished = make_run(monitor, "succeeded", seconds=20, sent=7, trigger="schedule")

    samples = scrape(client)
    runs = "audience_relay_export_runs"
    assert samples[(runs, (("destination", "autopilot"), ("status", "succeeded")))] == 1
    assert samples[(runs, (("destination", "autopilot"), ("status", "queued")))] == 1
    assert samples[(runs, (("destination", "campaign_monitor"), ("status", "failed")))] == 1
    assert samples[(runs, (("destination", "campaign_monitor"), ("status", "cancelled")))] == 0
    profiles = "audience_relay_export_profiles"
    assert samples[(profiles, (("destination", "autopilot"), ("outcome", "sent")))] == 15
    assert samples[(profiles, (("destination", "autopilot"), ("outcome", "failed")))] == 4
    assert samples[(profiles, (("destination", "autopilot"), ("outcome", "skipped")))] == 2
    assert samples[(profiles, (("destination", "campaign_monitor"), ("outcome", "sent")))] == 7

    duration = "audience_relay_export_run_duration_seconds"
    autopilot_label = ("destination", "autopilot")
    assert samples[(f"{duration}_bucket", (autopilot_label, ("le", "1.0")))] == 0
    assert samples[(f"{duration}_bucket", (autopilot_label, ("le", "5.0")))] == 1
    assert samples[(f"{duration}_bucket", (autopilot_label, ("le", "300.0")))] == 2
    assert samples[(f"{duration}_bucket", (autopilot_label, ("le", "+Inf")))] == 2
    assert samples[(f"{duration}_count", (autopilot_label,))] == 2
    assert samples[(f"{duration}_sum", (autopilot_label,))] == pytest.approx(103)

    last_run = "audience_relay_last_scheduled_run_success_timestamp_seconds"
    assert samples[(last_run, (("destination", "campaign_monitor"),))] == pytest.approx(
        finished.finished_at.timestamp()
    )
    assert (last_run, (("destination", "autopilot"),)) not in samples


@responses.activate
def test_api_calls_and_429s_are_counted_per_destination(client, settings):
    from connections.types.autopilot.client import AutopilotClient

    settings.AUTOPILOT_API_URL = "https://api.autopilot.test/v1"
    responses.get("https://api.autopilot.test/v1/lists", json={"lists": []})
    responses.get("https://api.autopilot.test/v1/lists", status=429, headers={"Retry-After": "0"})
    responses.get("https://api.autopilot.test/v1/lists", json={"lists": []})
    client_under_test = AutopilotClient(api_url=settings.AUTOPILOT_API_URL)
    client_under_test.session.get("https://api.autopilot.test/v1/lists")
    client_under_test.session.get("https://api.autopilot.test/v1/lists")
    client_under_test.session.get("https://api.autopilot.test/v1/lists")

    samples = scrape(client)
    assert samples[("audience_relay_api_calls", (("destination", "autopilot"),))] == 3
    assert samples[("audience_relay_api_rate_limited", (("destination", "autopilot"),))] == 1
    assert samples[("audience_relay_api_calls", (("destination", "campaign_monitor"),))] == 0


def test_counts_from_other_processes_add_up_through_the_cache(client):
    # What another worker flushed earlier, plus this process's own unflushed calls.
    cache.set(api_calls.cache_key("campaign_monitor", api_calls.CALLS), 40, timeout=None)
    api_calls.record("campaign_monitor", 200)
    api_calls.record("campaign_monitor", 429)
    samples = scrape(client)
    assert samples[("audience_relay_api_calls", (("destination", "campaign_monitor"),))] == 42
    labels = (("destination", "campaign_monitor"),)
    assert samples[("audience_relay_api_rate_limited", labels)] == 1


def test_the_last_successful_scheduled_refresh_is_recorded_by_the_task(client):
    name = "audience_relay_last_scheduled_refresh_success_timestamp_seconds"
    assert scrape(client)[(name, ())] == 0
    before = timezone.now().timestamp()
    scheduled_refresh.delay()
    assert scrape(client)[(name, ())] >= before - 1


def test_a_scheduled_refresh_with_a_failed_segment_is_not_a_success(client, monkeypatch):
    monkeypatch.setattr(
        "exports.schedule.run_refresh_chain",
        lambda: {"segments_refreshed": 1, "segments_failed": 1},
    )
    scheduled_refresh.delay()
    name = "audience_relay_last_scheduled_refresh_success_timestamp_seconds"
    assert scrape(client)[(name, ())] == 0


def test_queue_depth_is_reported_for_the_default_queue(client):
    samples = scrape(client)
    assert ("audience_relay_queue_depth", (("queue", "celery"),)) in samples
