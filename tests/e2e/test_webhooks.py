"""End to end: a real worker delivers webhooks to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exports import services as export_services
from webhooks import events, services, signing
from webhooks.models import Attempt, Delivery

from .conftest import wait_until
from .test_export_runs import cm_list_id, finished, make_export

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
# Fixtures the export needs (a Campaign Monitor connection on the fake, 203 profiles).
from .test_export_runs import cm_connection, people  # noqa: E402, F401


class Receiver:
    """A tiny threaded HTTP server that records each request and answers with the next status
    of ``statuses`` (the last one once they run out)."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = (
                        receiver.statuses.pop(0)
                        if len(receiver.statuses) > 1
                        else receiver.statuses[0]
                    )
                    receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_worker(request, monkeypatch):
    """The real worker, retrying failed deliveries after half a second instead of minutes, and
    sending to the receiver on 127.0.0.1 (production refuses addresses inside the network)."""
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE_SECONDS", "0.5,0.5,0.5")
    monkeypatch.setenv("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", "true")
    return request.getfixturevalue("worker")


def test_a_finished_export_run_is_announced_with_a_valid_signature(
    webhook_worker,
    cm_fake,
    cm_connection,  # noqa: F811
    people,  # noqa: F811
    alice,
):
    with Receiver([204]) as receiver:
        _endpoint, secret = services.endpoint_create(
            url=receiver.url, description="", events=[events.EXPORT_RUN_FINISHED], user=alice
        )
        export = make_export(cm_connection, cm_list_id(cm_fake), people, alice)
        run = finished(export_services.run_request(export=export, user=alice))

        wait_until(lambda: receiver.requests, timeout=30, message="the webhook")
        wait_until(
            lambda: Delivery.objects.filter(status=Delivery.Status.DELIVERED).exists(),
            timeout=10,
            message="the delivery to be recorded",
        )

    (headers, body, _status) = receiver.requests[0]
    assert len(receiver.requests) == 1, webhook_worker.log()[-3000:]
    assert signing.verify(secret=secret, headers=headers, body=body)
    event = json.loads(body)
    assert event["type"] == "export_run.finished"
    assert event["id"] == headers["Webhook-Id"]
    assert event["data"]["run"]["id"] == run.pk
    assert event["data"]["run"]["status"] == "succeeded"
    assert event["data"]["run"]["counts"]["sent"] == 200
    assert event["data"]["export"]["name"] == export.display_name
    assert secret not in webhook_worker.log()


def test_a_receiver_that_fails_twice_then_succeeds_gets_exactly_one_accepted_delivery(
    webhook_worker, alice
):
    with Receiver([500, 503, 200]) as receiver:
        endpoint, secret = services.endpoint_create(
            url=receiver.url, description="", events=[events.SEGMENT_REFRESHED], user=alice
        )
        (delivery,) = services.event_publish(events.SEGMENT_REFRESHED, {"segment": {"id": 1}})

        def delivered():
            delivery.refresh_from_db()
            return delivery.status == Delivery.Status.DELIVERED

        try:
            wait_until(delivered, timeout=30, message="the delivery to succeed")
        except AssertionError:
            print(webhook_worker.log()[-5000:])
            raise

    assert [status for _headers, _body, status in receiver.requests] == [500, 503, 200]
    assert len({headers["Webhook-Id"] for headers, _body, _status in receiver.requests}) == 1
    assert all(
        signing.verify(secret=secret, headers=headers, body=body)
        for headers, body, _status in receiver.requests
    )
    assert delivery.attempt_count == 3
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_a_worker_with_production_settings_sends_nothing_to_a_receiver_inside_the_network(
    request, monkeypatch, alice
):
    monkeypatch.delenv("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", raising=False)
    worker = request.getfixturevalue("worker")
    with Receiver([204]) as receiver:
        endpoint, _secret = services.endpoint_create(
            url=receiver.url, description="", events=[], user=alice
        )
        delivery = services.endpoint_send_test(endpoint=endpoint)

        attempt = wait_until(
            lambda: Attempt.objects.filter(delivery=delivery).first(),
            timeout=30,
            message="the attempt to be recorded",
        )

    assert receiver.requests == [], worker.log()[-3000:]
    assert not attempt.succeeded
    assert "server itself (127.0.0.1)" in services.shown(attempt.error)
