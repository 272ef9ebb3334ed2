"""Celery tasks: they take ids and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True)
def deliver(self, delivery_id: int) -> None:
    """Attempt the delivery; queue the retry when it is due soon (the sweeper queues the rest)."""
    from django.utils import timezone

    from webhooks.services import COUNTDOWN_LIMIT_SECONDS, delivery_attempt

    attempt = delivery_attempt(delivery_id)
    if attempt is None or attempt.next_retry_at is None:
        return
    countdown = (attempt.next_retry_at - timezone.now()).total_seconds()
    if countdown <= COUNTDOWN_LIMIT_SECONDS:
        self.apply_async((delivery_id,), countdown=max(countdown, 0))


@shared_task(acks_late=True)
def deliver_due() -> None:
    """Beat: queue every delivery whose attempt is due (retries far ahead, lost tasks)."""
    from webhooks.services import deliveries_enqueue_due

    deliveries_enqueue_due()
