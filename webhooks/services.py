"""Writes on webhooks: endpoints, and the delivery of events to them.

A delivery is a POST of JSON, signed: ``X-Audience-Relay-Signature: v1=<hex>`` is the
HMAC-SHA256, under the endpoint's secret, of ``<X-Audience-Relay-Timestamp>.<body>``. A
receiver answers 2xx to accept it. Anything else (or no answer) is retried with backoff
(``RETRY_DELAYS``); an endpoint whose deliveries have all failed for
``WEBHOOK_DISABLE_AFTER_HOURS`` is disabled and the administrators are told by e-mail.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from config.translation import gettext_later, stored
from connections import crypto
from exports.alerts import _recipients
from webhooks import client, tasks
from webhooks.models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

#: Seconds before each retry: 1 min, 5 min, 30 min, then every 2 hours (over a day: disabled).
RETRY_DELAYS = (60, 300, 1800, 7200)
MAX_ATTEMPTS = 16


@transaction.atomic
def endpoint_create(*, url: str, description: str, events: list[str], user) -> tuple:
    """Create an endpoint with a fresh signing secret; returns (endpoint, secret) — the secret
    is not shown again."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        description=description,
        events=events,
        encrypted_secret=crypto.encrypt_json({"secret": secret}),
        created_by=user,
    )
    return endpoint, secret


def endpoint_enable(*, endpoint: WebhookEndpoint) -> None:
    endpoint.is_active, endpoint.disabled_reason, endpoint.failing_since = True, "", None
    endpoint.save(update_fields=["is_active", "disabled_reason", "failing_since"])


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def emit(event: str, data: dict) -> int:
    """Queue ``event`` for every active endpoint that subscribed to it; returns how many."""
    endpoints = [e for e in WebhookEndpoint.objects.filter(is_active=True) if event in e.events]
    for endpoint in endpoints:
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event=event,
            payload={"event": event, "created_at": timezone.now().isoformat(), "data": data},
        )
        transaction.on_commit(lambda pk=delivery.pk: tasks.deliver.delay(pk))
    return len(endpoints)


def delivery_attempt(*, delivery_id: int) -> WebhookDelivery:
    """POST the delivery once; on failure schedule the next attempt or give up."""
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if delivery.status in (WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED):
        return delivery  # a task delivered twice by the broker
    if not endpoint.is_active:
        delivery.status, delivery.next_retry_at = WebhookDelivery.Status.FAILED, None
        delivery.last_error = stored(gettext_later("The endpoint is disabled."))
        delivery.save()
        return delivery
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    secret = crypto.decrypt_json(endpoint.encrypted_secret)["secret"]
    headers = {
        client.TIMESTAMP_HEADER: timestamp,
        client.SIGNATURE_HEADER: client.signature(secret, timestamp, body),
        client.EVENT_HEADER: delivery.event,
        client.DELIVERY_HEADER: str(delivery.pk),
    }
    delivery.attempts += 1
    try:
        response = client.post(endpoint.url, body, headers)
    except requests.RequestException as error:
        delivery.last_status_code = None
        delivery.last_error = stored(
            gettext_later("The endpoint could not be reached (%(error)s).")
            % {"error": error.__class__.__name__}
        )
    else:
        delivery.last_status_code = response.status_code
        if 200 <= response.status_code < 300:
            return _delivered(delivery)
        delivery.last_error = stored(
            gettext_later("The endpoint answered %(status)d.") % {"status": response.status_code}
        )
    return _failed(delivery)


def _delivered(delivery: WebhookDelivery) -> WebhookDelivery:
    delivery.status = WebhookDelivery.Status.DELIVERED
    delivery.delivered_at, delivery.next_retry_at, delivery.last_error = timezone.now(), None, ""
    delivery.save()
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(failing_since=None)
    return delivery


def _failed(delivery: WebhookDelivery) -> WebhookDelivery:
    endpoint = delivery.endpoint
    now = timezone.now()
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        endpoint.save(update_fields=["failing_since"])
    if now - endpoint.failing_since >= timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS):
        _disable(endpoint)
    if not endpoint.is_active or delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_retry_at = WebhookDelivery.Status.FAILED, None
        delivery.save()
        return delivery
    delay = RETRY_DELAYS[min(delivery.attempts, len(RETRY_DELAYS)) - 1]
    delivery.status = WebhookDelivery.Status.RETRYING
    delivery.next_retry_at = now + timedelta(seconds=delay)
    delivery.save()
    transaction.on_commit(lambda: tasks.deliver.apply_async((delivery.pk,), countdown=delay))
    return delivery


def _disable(endpoint: WebhookEndpoint) -> None:
    hours = int(settings.WEBHOOK_DISABLE_AFTER_HOURS)
    endpoint.is_active = False
    endpoint.disabled_reason = stored(
        gettext_later("Disabled on %(date)s: every delivery failed for %(hours)d hours.")
        % {"date": timezone.now().strftime("%Y-%m-%d %H:%M UTC"), "hours": hours}
    )
    endpoint.save(update_fields=["is_active", "disabled_reason"])
    logger.warning("Webhook endpoint %s disabled after failing for %s hours", endpoint.pk, hours)
    recipients = _recipients([])
    if not recipients:
        return
    body = _(
        "The webhook endpoint %(url)s no longer receives events from Audience Relay: every "
        "delivery to it failed for %(hours)d hours. Fix the receiver, then enable the endpoint "
        "again on the Webhooks page: %(link)s"
    ) % {"url": endpoint.url, "hours": hours, "link": f"{settings.SITE_URL}/webhooks/"}
    try:
        EmailMessage(
            subject=_("Webhook endpoint disabled: %(url)s") % {"url": endpoint.url},
            body=body,
            to=recipients,
        ).send()
    except Exception:
        logger.exception("Could not tell the administrators about webhook %s", endpoint.pk)
