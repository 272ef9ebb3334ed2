"""Reads on webhooks. Nothing here returns a secret."""

from __future__ import annotations

from django.db.models import Max, QuerySet

from webhooks.models import Attempt, Delivery, Endpoint

#: How many attempts the endpoint's page lists.
LOG_SIZE = 50


def endpoint_list() -> QuerySet[Endpoint]:
    return Endpoint.objects.defer("encrypted_secret").annotate(
        last_attempt_at=Max("deliveries__attempts__attempted_at")
    )


def endpoint_get(endpoint_id: int) -> Endpoint:
    return Endpoint.objects.defer("encrypted_secret").get(pk=endpoint_id)


def endpoint_log(endpoint: Endpoint, limit: int = LOG_SIZE) -> list[Attempt]:
    """The latest attempts of the endpoint's deliveries, newest first."""
    return list(
        Attempt.objects.filter(delivery__endpoint=endpoint)
        .select_related("delivery")
        .order_by("-attempted_at", "-id")[:limit]
    )


def endpoint_deliveries(endpoint: Endpoint) -> QuerySet[Delivery]:
    """The endpoint's deliveries with their attempts (the API pages them, newest first)."""
    return Delivery.objects.filter(endpoint=endpoint).prefetch_related("attempts")
