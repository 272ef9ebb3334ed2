"""Webhook endpoints, the deliveries of events to them and every attempt at a delivery."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from webhooks.events import EVENT_CHOICES


class Endpoint(models.Model):
    """A URL that receives the events it subscribed to, signed with its own secret.

    ``failing_since`` is the first failed attempt of the current unbroken streak of failures
    (None while the last attempt succeeded); the endpoint is disabled once the streak lasts
    ``WEBHOOK_DISABLE_AFTER_HOURS``.
    """

    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    events = models.JSONField(_("events"), default=list)
    # The signing secret, encrypted like connection secrets (core.crypto); never shown
    # again after it was created or rotated.
    encrypted_secret = models.TextField(editable=False, default="")
    is_enabled = models.BooleanField(_("enabled"), default=True)
    disabled_reason = models.TextField(_("why it is disabled"), blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["url", "id"]
        verbose_name = _("webhook endpoint")
        permissions = [("manage_webhook", _("Can add, change and remove webhook endpoints"))]

    def __str__(self) -> str:
        return self.url

    def get_absolute_url(self) -> str:
        return reverse("webhooks:detail", args=[self.pk])

    @property
    def event_labels(self) -> list[str]:
        labels = dict(EVENT_CHOICES)
        return [str(labels.get(event, event)) for event in self.events]


class DeliveryStatus(models.TextChoices):
    """``Delivery.Status``; declared outside the model so that its ``Meta`` can name them."""

    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class Delivery(models.Model):
    """One event for one endpoint. Its ``message_id`` (the ``Webhook-Id`` header) and its body
    stay the same on every attempt, so that a receiver can tell a retry from a new event."""

    Status = DeliveryStatus

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(_("event"), max_length=100)
    body = models.TextField()
    is_test = models.BooleanField(default=False)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    # When the next attempt is due; while an attempt is under way, when its lease runs out.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status=DeliveryStatus.PENDING),
                name="webhook_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id}"

    @property
    def is_cancelled(self) -> bool:
        return self.status == self.Status.CANCELLED


class Attempt(models.Model):
    """One HTTP request of a delivery, as the delivery log shows it."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField(_("sent at"))
    duration_ms = models.PositiveIntegerField(_("duration"), default=0)
    status_code = models.PositiveIntegerField(_("status code"), null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    # What went wrong, stored with config.translation.stored (shown in the reader's language).
    error = models.TextField(blank=True, default="")
    response_excerpt = models.TextField(_("response"), blank=True, default="")
    next_retry_at = models.DateTimeField(_("next retry"), null=True, blank=True)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id}#{self.number}"
