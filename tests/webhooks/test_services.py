from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
import requests
import responses
from django.core import mail
from django.utils import timezone

from tests.fake_dns import PUBLIC_ADDRESS
from webhooks import events, services, signing
from webhooks.models import Attempt, Delivery, Endpoint

from .conftest import ALL_EVENTS, URL

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
SCHEDULE = [60, 300, 1800, 7200, 21600, 43200, 43200]


@pytest.fixture(autouse=True)
def schedule(settings):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = SCHEDULE
    settings.WEBHOOK_DISABLE_AFTER_HOURS = 24


def publish(now=T0, event=events.EXPORT_RUN_FINISHED) -> Delivery:
    (delivery,) = services.event_publish(event, {"run": {"id": 7}}, now=now)
    return delivery


@responses.activate
def test_a_delivery_is_a_signed_json_post(endpoint, secret):
    responses.post(URL, status=204)
    delivery = publish()

    attempt = services.delivery_attempt(delivery.pk, now=T0)

    (call,) = responses.calls
    body = call.request.body
    assert json.loads(body) == {
        "id": str(delivery.message_id),
        "type": "export_run.finished",
        "created_at": T0.isoformat(),
        "data": {"run": {"id": 7}},
    }
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.headers["Webhook-Id"] == str(delivery.message_id)
    assert call.request.headers["Webhook-Timestamp"] == str(int(T0.timestamp()))
    assert signing.verify(
        secret=secret, headers=call.request.headers, body=body, now=T0.timestamp()
    )
    assert (attempt.succeeded, attempt.status_code, attempt.next_retry_at) == (True, 204, None)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == (Delivery.Status.DELIVERED, 1)


@responses.activate
def test_a_failed_attempt_is_retried_on_the_backoff_schedule_then_given_up(endpoint):
    responses.post(URL, status=500, body="oops")
    delivery = publish()
    now = T0
    retry_times = []

    while True:
        attempt = services.delivery_attempt(delivery.pk, now=now)
        assert attempt is not None
        if attempt.next_retry_at is None:
            break
        retry_times.append(attempt.next_retry_at)
        # Not due a second before the retry time.
        assert (
            services.delivery_attempt(
                delivery.pk, now=attempt.next_retry_at - dt.timedelta(seconds=1)
            )
            is None
        )
        now = attempt.next_retry_at

    gaps = [
        (later - earlier).total_seconds()
        for earlier, later in zip([T0, *retry_times[:-1]], retry_times, strict=True)
    ]
    assert gaps == SCHEDULE
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == (Delivery.Status.FAILED, len(SCHEDULE) + 1)
    assert len(responses.calls) == len(SCHEDULE) + 1


def test_the_retry_delay_is_bounded_by_the_schedule():
    assert [services.retry_delay(n).total_seconds() for n in range(1, 8)] == SCHEDULE
    assert services.retry_delay(8) is None


@responses.activate
def test_a_receiver_that_fails_twice_then_succeeds_gets_exactly_one_accepted_delivery(endpoint):
    responses.post(URL, status=503)
    responses.post(URL, status=500)
    responses.post(URL, status=200, body="ok")
    delivery = publish()
    now = T0

    while (attempt := services.delivery_attempt(delivery.pk, now=now)) and attempt.next_retry_at:
        now = attempt.next_retry_at

    assert [call.response.status_code for call in responses.calls] == [503, 500, 200]
    assert len({call.request.headers["Webhook-Id"] for call in responses.calls}) == 1
    assert services.delivery_attempt(delivery.pk, now=now + dt.timedelta(days=2)) is None
    assert len(responses.calls) == 3
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


@responses.activate
def test_an_attempt_claimed_by_one_worker_is_not_sent_again_by_another(endpoint):
    responses.post(URL, status=200)
    delivery = publish()
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=T0 + dt.timedelta(minutes=2))

    assert services.delivery_attempt(delivery.pk, now=T0) is None
    assert len(responses.calls) == 0


@responses.activate
def test_redirects_are_not_followed_and_count_as_failures(endpoint):
    responses.post(URL, status=302, headers={"Location": "https://elsewhere.example.com/"})
    delivery = publish()

    attempt = services.delivery_attempt(delivery.pk, now=T0)

    assert len(responses.calls) == 1
    assert (attempt.succeeded, attempt.status_code) == (False, 302)
    assert "redirect" in services.shown(attempt.error)
    assert attempt.next_retry_at == T0 + dt.timedelta(seconds=60)


@responses.activate
def test_a_timeout_is_logged_as_no_answer(endpoint, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 10
    responses.post(URL, body=requests.ReadTimeout("slow"))
    delivery = publish()

    attempt = services.delivery_attempt(delivery.pk, now=T0)

    assert attempt.status_code is None
    assert services.shown(attempt.error) == "No answer within 10 seconds."


@responses.activate
def test_the_response_excerpt_is_bounded(endpoint):
    responses.post(URL, status=400, body="x" * 10_000)
    attempt = services.delivery_attempt(publish().pk, now=T0)

    assert attempt.response_excerpt == "x" * services.RESPONSE_EXCERPT_CHARS


def test_only_enabled_endpoints_that_subscribed_get_the_event(alice):
    wants, _secret = services.endpoint_create(
        url=URL, description="", events=[events.SEGMENT_REFRESHED], user=alice
    )
    services.endpoint_create(
        url=URL, description="", events=[events.EXPORT_RUN_FINISHED], user=alice
    )
    disabled, _secret = services.endpoint_create(
        url=URL, description="", events=[events.SEGMENT_REFRESHED], user=alice
    )
    services.endpoint_disable(endpoint=disabled)

    deliveries = services.event_publish(events.SEGMENT_REFRESHED, {})

    assert [delivery.endpoint_id for delivery in deliveries] == [wants.pk]


@responses.activate
def test_an_endpoint_failing_for_a_day_is_disabled_and_the_administrators_told(
    endpoint, alice, django_capture_on_commit_callbacks
):
    alice.email = "alice@example.com"
    alice.save()
    responses.post(URL, status=500)
    first = publish(now=T0)
    services.delivery_attempt(first.pk, now=T0)
    waiting = publish(now=T0 + dt.timedelta(hours=1))

    almost = T0 + dt.timedelta(hours=23, minutes=59)
    services.delivery_attempt(publish(now=almost).pk, now=almost)
    endpoint.refresh_from_db()
    assert endpoint.is_enabled and endpoint.failing_since == T0
    assert mail.outbox == []

    day = T0 + dt.timedelta(hours=24)
    with django_capture_on_commit_callbacks(execute=True):
        attempt = services.delivery_attempt(publish(now=day).pk, now=day)

    endpoint.refresh_from_db()
    assert not endpoint.is_enabled
    assert "every delivery has failed since" in services.shown(endpoint.disabled_reason)
    waiting.refresh_from_db()
    assert waiting.status == Delivery.Status.CANCELLED
    assert not Attempt.objects.filter(next_retry_at__isnull=False).exists()
    assert attempt.next_retry_at is None
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert URL in message.subject
    assert f"/webhooks/{endpoint.pk}/" in message.body
    assert services.delivery_attempt(waiting.pk, now=day) is None


@responses.activate
def test_a_success_breaks_the_failure_streak(endpoint):
    responses.post(URL, status=500)
    services.delivery_attempt(publish(now=T0).pk, now=T0)
    responses.replace(responses.POST, URL, status=200)
    later = T0 + dt.timedelta(hours=12)
    services.delivery_attempt(publish(now=later).pk, now=later)
    responses.replace(responses.POST, URL, status=500)

    day = T0 + dt.timedelta(hours=25)
    services.delivery_attempt(publish(now=day).pk, now=day)

    endpoint.refresh_from_db()
    assert endpoint.is_enabled
    assert endpoint.failing_since == day


@responses.activate
def test_a_test_event_is_tried_once_and_leaves_the_streak_alone(endpoint):
    responses.post(URL, status=500)
    delivery = services.endpoint_send_test(endpoint=endpoint)

    attempt = services.delivery_attempt(delivery.pk)

    assert attempt.next_retry_at is None
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert json.loads(delivery.body)["type"] == "webhook.test"
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


@responses.activate
def test_a_test_event_reaches_a_disabled_endpoint(endpoint):
    responses.post(URL, status=200)
    services.endpoint_disable(endpoint=endpoint)

    attempt = services.delivery_attempt(services.endpoint_send_test(endpoint=endpoint).pk)

    assert attempt.succeeded


def test_enabling_starts_a_new_streak(endpoint):
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=T0)
    endpoint.refresh_from_db()
    services.endpoint_disable(endpoint=endpoint, reason="broken")

    services.endpoint_enable(endpoint=endpoint)

    endpoint.refresh_from_db()
    assert (endpoint.is_enabled, endpoint.failing_since, endpoint.disabled_reason) == (
        True,
        None,
        "",
    )


@responses.activate
def test_the_sweeper_sends_what_is_due(endpoint):
    responses.post(URL, status=200)
    due = publish(now=timezone.now() - dt.timedelta(minutes=1))
    later = publish(now=timezone.now() + dt.timedelta(hours=1))

    assert services.deliveries_enqueue_due() == 1  # tasks run eagerly in the unit tests

    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, later.status) == (Delivery.Status.DELIVERED, Delivery.Status.PENDING)


def test_first_attempts_are_queued_when_the_transaction_commits(
    endpoint, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(services.tasks.deliver, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        delivery = publish()
        assert queued == []

    assert queued == [(delivery.pk,)]


def test_the_secret_is_stored_encrypted(endpoint, secret):
    stored = Endpoint.objects.values_list("encrypted_secret", flat=True).get(pk=endpoint.pk)

    assert secret not in stored
    assert services.endpoint_secret(endpoint) == secret


def test_rotating_the_secret_replaces_it(endpoint, secret):
    new = services.endpoint_rotate_secret(endpoint=endpoint)

    assert new != secret
    assert services.endpoint_secret(Endpoint.objects.get(pk=endpoint.pk)) == new


@responses.activate
def test_the_secret_is_never_logged(endpoint, secret, caplog):
    caplog.set_level(logging.DEBUG)
    responses.post(URL, status=500)
    services.delivery_attempt(publish().pk, now=T0)
    services.endpoint_rotate_secret(endpoint=endpoint)

    assert caplog.records
    assert secret not in caplog.text
    assert all(secret not in str(record.args) for record in caplog.records)


@responses.activate
def test_the_sweeper_forgets_deliveries_that_ended_long_ago(endpoint, settings):
    settings.WEBHOOK_LOG_DAYS = 30
    responses.post(URL, status=200)
    old, recent = publish(now=T0), publish(now=T0)
    services.delivery_attempt(old.pk, now=T0)
    services.delivery_attempt(recent.pk, now=T0 + dt.timedelta(days=29))

    services.deliveries_enqueue_due(now=T0 + dt.timedelta(days=31))

    assert list(Delivery.objects.values_list("pk", flat=True)) == [recent.pk]
    assert Attempt.objects.get().delivery_id == recent.pk


@responses.activate
def test_a_secret_that_cannot_be_decrypted_is_a_failed_attempt_not_a_crash(endpoint, settings):
    settings.FIELD_ENCRYPTION_KEY = ["_D6knpdbJ6LfNr_8TeKe-m144__1zy6Ey0JXCLeJAZc="]

    attempt = services.delivery_attempt(publish().pk, now=T0)

    assert len(responses.calls) == 0
    assert "Rotate the secret" in services.shown(attempt.error)
    assert attempt.next_retry_at == T0 + dt.timedelta(seconds=60)


@responses.activate
def test_a_delivery_to_a_host_that_now_resolves_inside_the_network_is_not_sent(endpoint, dns):
    responses.post(URL, status=204)
    dns.answers["hooks.example.com"] = ["10.0.0.5"]  # changed since the endpoint was saved

    attempt = services.delivery_attempt(publish().pk, now=T0)

    assert len(responses.calls) == 0
    assert (attempt.succeeded, attempt.status_code) == (False, None)
    assert services.shown(attempt.error) == (
        "Not sent: This address points inside your own network (10.0.0.5). Webhooks are only "
        "sent to public addresses."
    )
    assert attempt.next_retry_at == T0 + dt.timedelta(seconds=60)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == T0


@responses.activate
def test_a_refused_delivery_is_retried_and_goes_out_once_the_host_is_public_again(endpoint, dns):
    responses.post(URL, status=204)
    dns.answers["hooks.example.com"] = ["127.0.0.1"]
    delivery = publish()
    first = services.delivery_attempt(delivery.pk, now=T0)
    dns.answers["hooks.example.com"] = [PUBLIC_ADDRESS]

    second = services.delivery_attempt(delivery.pk, now=first.next_retry_at)

    assert "server itself (127.0.0.1)" in services.shown(first.error)
    assert second.succeeded
    assert len(responses.calls) == 1


@responses.activate
def test_a_local_receiver_gets_deliveries_when_private_addresses_are_allowed(alice, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    local = "http://127.0.0.1:9000/hooks"
    responses.post(local, status=204)
    services.endpoint_create(url=local, description="", events=ALL_EVENTS, user=alice)

    attempt = services.delivery_attempt(publish().pk, now=T0)

    assert attempt.succeeded
    assert len(responses.calls) == 1


def test_every_change_to_an_endpoint_is_in_the_audit_log_without_its_secret(endpoint, secret):
    from audit.models import AuditEntry

    services.endpoint_update(endpoint=endpoint, url=URL, description="Growth team", events=[])
    new_secret = services.endpoint_rotate_secret(endpoint=endpoint)
    services.endpoint_disable(endpoint=endpoint)
    services.endpoint_enable(endpoint=endpoint)
    services.endpoint_delete(endpoint=endpoint)

    entries = AuditEntry.objects.filter(object_type="endpoint").order_by("pk")
    assert [entry.action for entry in entries] == [
        "webhook.created",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.disabled",
        "webhook.enabled",
        "webhook.deleted",
    ]
    updated = entries[1]
    assert updated.before["description"] == "Data team"
    assert updated.after["description"] == "Growth team"
    recorded = json.dumps([[entry.before, entry.after] for entry in entries])
    assert secret not in recorded and new_secret not in recorded
    assert "encrypted_secret" not in recorded
