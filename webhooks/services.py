"""Writes on webhooks: endpoints, publishing events, and delivering them.

Delivery: publishing an event makes one ``Delivery`` per enabled endpoint that subscribed to it
and queues its first attempt once the transaction commits. An attempt first *claims* the
delivery (one guarded UPDATE that moves ``next_attempt_at`` past the request's timeout), so
that a task delivered twice, or the sweeper and a queued retry at once, never send the same
attempt twice; a worker lost mid-request lets the claim run out and the sweeper tries again.

A failed attempt is retried after ``WEBHOOK_RETRY_SCHEDULE_SECONDS`` (1 min, 5 min, 30 min,
2 h, 6 h, 12 h, 12 h by default), then the delivery is marked failed. Any 2xx answer is a
success; a redirect is a failure (redirects are not followed), and so is an attempt whose host
now resolves to an address webhooks are not sent to (``webhooks.addresses``; nothing is sent).
An endpoint whose attempts have all failed for ``WEBHOOK_DISABLE_AFTER_HOURS`` since the first
failure of the streak is disabled, its pending deliveries are cancelled and the administrators
are e-mailed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

import audit
from accounts.selectors import alert_addresses
from audit.actions import AuditAction
from config.translation import gettext_later as _
from config.translation import shown, stored
from core.crypto import DecryptionError, decrypt_json, encrypt_json
from webhooks import addresses, events, http, signing, tasks
from webhooks.models import Attempt, Delivery, Endpoint

logger = logging.getLogger(__name__)

#: How much of a response the delivery log keeps.
RESPONSE_EXCERPT_CHARS = 500
#: Retries due within this many seconds are queued with a countdown by the task that made the
#: attempt; later ones are left to the sweeper (Redis would hand a task with a far ETA to a
#: worker again after its visibility timeout).
COUNTDOWN_LIMIT_SECONDS = 3600


# Endpoints -----------------------------------------------------------------------------------


def endpoint_create(
    *, url: str, description: str, events: Iterable[str], user
) -> tuple[Endpoint, str]:
    """Create an endpoint with a new secret; return it and the secret, which is not kept in
    clear anywhere: show it once."""
    secret = signing.new_secret()
    endpoint = Endpoint.objects.create(
        url=url,
        description=description,
        events=list(events),
        encrypted_secret=encrypt_json({"secret": secret}),
        created_by=user,
    )
    logger.info("Webhook endpoint %s created", endpoint.pk)
    audit.record(AuditAction.WEBHOOK_CREATED, endpoint)
    return endpoint, secret


def endpoint_update(
    *, endpoint: Endpoint, url: str, description: str, events: Iterable[str]
) -> Endpoint:
    before = audit.snapshot(endpoint)
    endpoint.url, endpoint.description, endpoint.events = url, description, list(events)
    endpoint.save(update_fields=["url", "description", "events", "updated_at"])
    audit.record(AuditAction.WEBHOOK_UPDATED, endpoint, before=before)
    return endpoint


def endpoint_rotate_secret(*, endpoint: Endpoint) -> str:
    """Replace the secret; the old one stops signing at once. Return the new one (show it once)."""
    secret = signing.new_secret()
    endpoint.encrypted_secret = encrypt_json({"secret": secret})
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["encrypted_secret", "secret_rotated_at", "updated_at"])
    logger.info("Webhook endpoint %s: secret rotated", endpoint.pk)
    audit.record(
        AuditAction.WEBHOOK_SECRET_ROTATED,
        endpoint,
        after={"secret_rotated_at": endpoint.secret_rotated_at},
    )
    return secret


def endpoint_enable(*, endpoint: Endpoint) -> None:
    """Enable the endpoint and start a new failure streak from nothing."""
    before = audit.snapshot(endpoint)
    endpoint.is_enabled = True
    endpoint.disabled_reason = ""
    endpoint.disabled_at = None
    endpoint.failing_since = None
    endpoint.save(
        update_fields=[
            "is_enabled",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "updated_at",
        ]
    )
    audit.record(AuditAction.WEBHOOK_ENABLED, endpoint, before=before)


def endpoint_disable(
    *, endpoint: Endpoint, reason: Any = "", now: dt.datetime | None = None
) -> None:
    """Disable the endpoint and cancel what was waiting to be sent to it."""
    now = now or timezone.now()
    with transaction.atomic():
        before = audit.snapshot(endpoint)
        endpoint.is_enabled = False
        endpoint.disabled_reason = stored(reason) if reason else ""
        endpoint.disabled_at = now
        endpoint.save(update_fields=["is_enabled", "disabled_reason", "disabled_at", "updated_at"])
        Attempt.objects.filter(
            delivery__endpoint=endpoint,
            delivery__status=Delivery.Status.PENDING,
            delivery__is_test=False,
            next_retry_at__isnull=False,
        ).update(next_retry_at=None)
        endpoint.deliveries.filter(status=Delivery.Status.PENDING, is_test=False).update(
            status=Delivery.Status.CANCELLED, next_attempt_at=None, finished_at=now
        )
        audit.record(AuditAction.WEBHOOK_DISABLED, endpoint, before=before)


def endpoint_delete(*, endpoint: Endpoint) -> None:
    logger.info("Webhook endpoint %s removed", endpoint.pk)
    audit.record(AuditAction.WEBHOOK_DELETED, endpoint, before=audit.snapshot(endpoint), after=None)
    endpoint.delete()


def endpoint_secret(endpoint: Endpoint) -> str:
    return decrypt_json(endpoint.encrypted_secret)["secret"]


# Publishing ----------------------------------------------------------------------------------


def event_publish(
    event_type: str, data: dict[str, Any], *, now: dt.datetime | None = None
) -> list[Delivery]:
    """Make a delivery of the event for every enabled endpoint that subscribed to it and queue
    them once the current transaction commits."""
    # Filtered in Python: SQLite (the demo) cannot look inside a JSON list, and endpoints are few.
    endpoints = Endpoint.objects.filter(is_enabled=True).defer("encrypted_secret")
    return [
        _delivery_create(endpoint, event_type, data, now=now)
        for endpoint in endpoints
        if event_type in endpoint.events
    ]


def endpoint_send_test(*, endpoint: Endpoint) -> Delivery:
    """Queue a ``webhook.test`` event to the endpoint, through the real delivery path. A test is
    tried once (no retries) and counts neither for nor against the failure streak."""
    return _delivery_create(endpoint, events.TEST, events.test_event(), is_test=True)


def _delivery_create(
    endpoint: Endpoint,
    event_type: str,
    data: dict[str, Any],
    *,
    is_test: bool = False,
    now: dt.datetime | None = None,
) -> Delivery:
    now = now or timezone.now()
    message_id = uuid.uuid4()
    envelope = {
        "id": str(message_id),
        "type": event_type,
        "created_at": now.isoformat(),
        "data": data,
    }
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        message_id=message_id,
        event_type=event_type,
        body=json.dumps(envelope, separators=(",", ":"), ensure_ascii=False),
        is_test=is_test,
        next_attempt_at=now,
    )
    transaction.on_commit(lambda: _enqueue(delivery.pk))
    return delivery


def _enqueue(delivery_id: int) -> None:
    """Queue an attempt; if the broker is down the delivery stays due and the sweeper sends it."""
    try:
        tasks.deliver.delay(delivery_id)
    except Exception:
        logger.exception("Could not queue webhook delivery %s; the sweeper will", delivery_id)


def deliveries_enqueue_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Queue an attempt of every delivery that is due (the beat sweeper); return how many.
    Also forgets deliveries that ended more than ``WEBHOOK_LOG_DAYS`` ago, with their log."""
    now = now or timezone.now()
    Delivery.objects.filter(
        finished_at__lt=now - dt.timedelta(days=settings.WEBHOOK_LOG_DAYS)
    ).delete()
    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in due:
        _enqueue(delivery_id)
    return len(due)


# Delivering ----------------------------------------------------------------------------------


def retry_delay(attempt_count: int) -> dt.timedelta | None:
    """How long after its ``attempt_count``-th failed attempt a delivery is tried again; None
    once the schedule is used up."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE_SECONDS
    if attempt_count < 1 or attempt_count > len(schedule):
        return None
    return dt.timedelta(seconds=float(schedule[attempt_count - 1]))


def delivery_attempt(delivery_id: int, *, now: dt.datetime | None = None) -> Attempt | None:
    """Make the delivery's next attempt if it is due; return it, or None when it was not due
    (already delivered, being attempted elsewhere, its endpoint disabled)."""
    now = now or timezone.now()
    lease = dt.timedelta(
        seconds=settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS + settings.WEBHOOK_TIMEOUT_SECONDS + 60
    )
    claimed = (
        Delivery.objects.filter(
            pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(endpoint__is_enabled=True) | Q(is_test=True))
        .update(next_attempt_at=now + lease)
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:  # the endpoint was removed meanwhile
        return None
    outcome = _send(delivery, now=now)
    return _record(delivery, now=now, **outcome)


def _send(delivery: Delivery, *, now: dt.datetime) -> dict[str, Any]:
    """One signed POST; what happened, for the log. Never raises for what the network does."""
    endpoint = delivery.endpoint
    body = delivery.body.encode()
    started = time.monotonic()
    status_code, excerpt, error = None, "", None
    try:
        headers = signing.signed_headers(
            secret=endpoint_secret(endpoint),
            message_id=str(delivery.message_id),
            timestamp=int(now.timestamp()),
            body=body,
        )
    except DecryptionError:
        error = _(
            "The signing secret could not be decrypted (the encryption keys changed). Rotate "
            "the secret and give the new one to the receiver."
        )
        return {
            "status_code": None,
            "excerpt": "",
            "error": error,
            "succeeded": False,
            "duration_ms": 0,
        }
    try:
        with http.post(endpoint.url, body=body, headers=headers) as response:
            status_code = response.status_code
            excerpt = _excerpt(response)
    except addresses.AddressRefused as refused:
        # The host's DNS may have changed since the endpoint was saved: like a connection
        # error, this is retried and counts towards disabling the endpoint.
        error = _("Not sent: %(reason)s") % {"reason": refused.message}
        logger.warning("Webhook delivery %s not sent: %s", delivery.pk, refused)
    except requests.Timeout:
        error = _("No answer within %(seconds)s seconds.") % {
            "seconds": f"{settings.WEBHOOK_TIMEOUT_SECONDS:g}"
        }
    except requests.RequestException as failure:
        error = _("Could not reach the endpoint (%(error)s).") % {
            "error": failure.__class__.__name__
        }
    duration_ms = round((time.monotonic() - started) * 1000)
    succeeded = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not succeeded:
        if 300 <= status_code < 400:
            error = _(
                "The endpoint answered with a redirect (%(code)s); redirects are not followed."
            ) % {"code": status_code}
        else:
            error = _("The endpoint answered %(code)s instead of a 2xx status.") % {
                "code": status_code
            }
    return {
        "status_code": status_code,
        "excerpt": excerpt,
        "error": error,
        "succeeded": succeeded,
        "duration_ms": duration_ms,
    }


def _excerpt(response: requests.Response) -> str:
    raw = response.raw.read(RESPONSE_EXCERPT_CHARS * 4, decode_content=True) or b""
    text = raw.decode(response.encoding or "utf-8", errors="replace")
    return text[:RESPONSE_EXCERPT_CHARS]


def _record(
    delivery: Delivery,
    *,
    now: dt.datetime,
    status_code: int | None,
    excerpt: str,
    error: Any,
    succeeded: bool,
    duration_ms: int,
) -> Attempt:
    """Log the attempt, schedule the next one or close the delivery, and keep the endpoint's
    failure streak; disable the endpoint when the streak has lasted too long."""
    disabled = False
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        number = delivery.attempt_count + 1
        next_retry_at = None
        if succeeded:
            delivery.status = Delivery.Status.DELIVERED
        else:
            delay = None if delivery.is_test else retry_delay(number)
            if delay is None:
                delivery.status = Delivery.Status.FAILED
            else:
                next_retry_at = now + delay
        delivery.attempt_count = number
        delivery.next_attempt_at = next_retry_at
        delivery.finished_at = None if next_retry_at else now
        delivery.save(update_fields=["status", "attempt_count", "next_attempt_at", "finished_at"])
        attempt = Attempt.objects.create(
            delivery=delivery,
            number=number,
            attempted_at=now,
            duration_ms=duration_ms,
            status_code=status_code,
            succeeded=succeeded,
            error=stored(error) if error else "",
            response_excerpt=excerpt,
            next_retry_at=next_retry_at,
        )
        if not delivery.is_test and endpoint.is_enabled:
            disabled = _keep_streak(endpoint, succeeded=succeeded, now=now)
    if disabled:
        attempt.next_retry_at = None
    logger.info(
        "Webhook delivery %s attempt %s: %s in %s ms",
        delivery.pk,
        number,
        status_code or "no answer",
        duration_ms,
    )
    return attempt


def _keep_streak(endpoint: Endpoint, *, succeeded: bool, now: dt.datetime) -> bool:
    """Reset or extend the endpoint's failure streak; return whether it was disabled."""
    if succeeded:
        if endpoint.failing_since is not None:
            Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return False
    if endpoint.failing_since is None:
        Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=now)
        endpoint.failing_since = now
    limit = dt.timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS)
    if now - endpoint.failing_since < limit:
        return False
    reason = _(
        "Disabled on %(when)s: every delivery has failed since %(since)s. Fix the receiver, "
        "send a test event, then enable the endpoint again."
    ) % {"when": _when(now), "since": _when(endpoint.failing_since)}
    endpoint_disable(endpoint=endpoint, reason=reason, now=now)
    transaction.on_commit(lambda: _alert_disabled(endpoint.pk))
    logger.warning(
        "Webhook endpoint %s disabled after failing since %s", endpoint.pk, endpoint.failing_since
    )
    return True


def _when(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def _alert_disabled(endpoint_id: int) -> None:
    """E-mail the administrators that an endpoint was disabled; a mail that fails is logged."""
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    recipients = alert_addresses([])
    if not recipients:
        logger.info(
            "No administrator with an e-mail address to tell about endpoint %s", endpoint_id
        )
        return
    with translation.override(settings.LANGUAGE_CODE):
        subject = gettext("Webhook endpoint %(url)s was disabled") % {"url": endpoint.url}
        link = settings.SITE_URL.rstrip("/") + reverse("webhooks:detail", args=[endpoint.pk])
        body = "\n\n".join(
            [
                gettext("Hello,"),
                shown(endpoint.disabled_reason),
                gettext(
                    "The delivery log shows each attempt and what the endpoint answered: %(url)s"
                )
                % {"url": link},
                gettext(
                    "You receive this e-mail because you are an administrator of Audience Relay."
                ),
            ]
        )
    try:
        EmailMessage(subject=subject, body=body + "\n", to=recipients).send()
    except Exception:
        logger.exception("Could not e-mail that webhook endpoint %s was disabled", endpoint_id)
