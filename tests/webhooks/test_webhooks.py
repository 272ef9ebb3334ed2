"""Webhooks: signed deliveries to a real receiver on 127.0.0.1, retries, disabling, the page."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from config.translation import shown
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


class Receiver:
    """An HTTP server that answers each POST with the next of ``statuses`` (then 200)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_HTTP = True
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def subscribe(url, events=("segment.refreshed",)):
    return services.endpoint_create(url=url, description="", events=list(events), user=None)


def emit_now(capture, event="segment.refreshed", data=None):
    with capture(execute=True):
        services.emit(event, data or {"segment": 1})


def test_the_signature_verifies_with_the_secret(receiver, django_capture_on_commit_callbacks):
    server = receiver()
    _endpoint, secret = subscribe(server.url)
    emit_now(django_capture_on_commit_callbacks)
    ((headers, body),) = server.requests
    timestamp = headers["X-Audience-Relay-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert headers["X-Audience-Relay-Signature"] == "v1=" + expected.hexdigest()
    assert headers["X-Audience-Relay-Event"] == "segment.refreshed"
    assert json.loads(body)["data"] == {"segment": 1}


def test_a_receiver_that_fails_twice_then_succeeds_gets_one_accepted_delivery(
    receiver, django_capture_on_commit_callbacks
):
    server = receiver([500, 503])
    subscribe(server.url)
    emit_now(django_capture_on_commit_callbacks)
    assert len(server.requests) == 3
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert WebhookEndpoint.objects.get().failing_since is None


def test_a_failed_attempt_records_the_status_code_and_next_retry(receiver, monkeypatch):
    server = receiver([500])
    subscribe(server.url)
    monkeypatch.setattr(services.tasks.deliver, "delay", lambda pk: None)
    services.emit("segment.refreshed", {"segment": 1})
    delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    assert (delivery.status, delivery.last_status_code) == ("retrying", 500)
    assert delivery.next_retry_at > timezone.now() + timedelta(seconds=50)


def test_an_endpoint_failing_for_a_day_is_disabled_and_the_admins_told(
    receiver, alice, django_capture_on_commit_callbacks
):
    alice.email = "alice@example.com"
    alice.save()
    server = receiver([500] * 5)
    endpoint, _secret = subscribe(server.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(hours=25)
    )
    emit_now(django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "24 hours" in shown(endpoint.disabled_reason)
    assert len(server.requests) == 1
    assert WebhookDelivery.objects.get().status == "failed"
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"] and server.url in message.body
    emit_now(django_capture_on_commit_callbacks)
    assert len(server.requests) == 1  # disabled: nothing more is sent


def test_a_refresh_a_finished_run_and_a_lost_connection_are_announced(
    receiver, django_capture_on_commit_callbacks
):
    from connections.services import connection_record_auth_failure
    from exports import services as export_services
    from exports.models import Export, ExportRun
    from segments.services import segment_refresh
    from tests.connections.factories import ConnectionFactory
    from tests.factories import SegmentFactory

    server = receiver()
    subscribe(server.url, events=list(services_events()))
    segment = SegmentFactory()
    connection = ConnectionFactory()
    export = Export.objects.create(display_name="N", connection=connection, list_id="l")
    run = ExportRun.objects.create(export=export, trigger="user", status="succeeded", sent=5)
    with django_capture_on_commit_callbacks(execute=True):
        segment_refresh(segment_id=segment.pk)
        export_services.run_after_finish(run.pk)
        connection_record_auth_failure(connection_id=connection.pk, message="gone")
    events = [json.loads(body) for _headers, body in server.requests]
    assert [event["event"] for event in events] == list(services_events())
    assert events[1]["data"]["counts"]["sent"] == 5
    assert events[1]["data"]["status"] == "succeeded"


def services_events():
    return ("segment.refreshed", "export_run.finished", "connection.needs_reauthentication")


def test_the_page_adds_an_endpoint_and_shows_its_secret_once(as_alice, settings):
    settings.WEBHOOKS_ALLOW_HTTP = False
    page = reverse("webhooks:list")
    refused = as_alice.post(page, {"url": "http://example.com/h", "events": ["segment.refreshed"]})
    assert "must start with https://" in refused.content.decode()
    made = as_alice.post(page, {"url": "https://example.com/h", "events": ["segment.refreshed"]})
    html = made.content.decode()
    assert 'id="new-secret"' in html and "whsec_" in html
    assert "whsec_" not in as_alice.get(page).content.decode()
    endpoint = WebhookEndpoint.objects.get()
    detail = as_alice.get(reverse("webhooks:detail", args=[endpoint.pk]))
    assert detail.status_code == 200
