"""Celery tasks: they take ids and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def deliver(delivery_id: int) -> None:
    from webhooks.services import delivery_attempt

    delivery_attempt(delivery_id)


@shared_task(acks_late=True)
def deliver_due() -> None:
    """Beat: queue every delivery whose attempt is due (retries far ahead, lost tasks)."""
    from webhooks.services import deliveries_enqueue_due

    deliveries_enqueue_due()
