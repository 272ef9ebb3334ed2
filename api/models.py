"""The record of erasures: who erased whom, when, and which exports confirmed the removal.

The address is never kept in clear: ``address_hash`` is an HMAC-SHA256 under
``ERASURE_HASH_KEY`` (so a later request about the same address can be matched to the
record), and each pending export keeps the address encrypted (``connections.crypto``) only
until it confirmed the removal.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Erasure(models.Model):
    class Key(models.TextChoices):
        CUSTOMER_ID = "customer_id", _("customer id")
        EMAIL = "email", _("email")

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True)
    erased_by = models.CharField(_("erased by"), max_length=20, choices=Key.choices)
    address_hash = models.CharField(max_length=64, db_index=True)
    profiles_erased = models.PositiveIntegerField(default=0)
    memberships_erased = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"erasure {self.pk}"


class ErasureExport(models.Model):
    """One export that delivered the address, until and after it confirmed the removal."""

    erasure = models.ForeignKey(Erasure, on_delete=models.CASCADE, related_name="exports")
    export = models.ForeignKey(
        "exports.Export", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    export_name = models.CharField(max_length=200)
    #: The address, encrypted; emptied once the export confirmed.
    encrypted_address = models.TextField(blank=True, default="")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    #: The run that removed the address, or null when it was removed at once (?propagate=now).
    confirmed_by_run = models.ForeignKey(
        "exports.ExportRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.erasure_id}:{self.export_name}"
