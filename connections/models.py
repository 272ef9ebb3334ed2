"""A connection: Audience Relay's link to one account of an email-marketing service."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from connections.types import registry


class Connection(models.Model):
    """Secrets live only in ``encrypted_credentials`` (a Fernet token, see ``core.crypto``)
    and are read and written only by ``connections.services``. Nothing renders them."""

    class Status(models.TextChoices):
        HEALTHY = "healthy", _("Healthy")
        NEEDS_REAUTHENTICATION = "needs_reauthentication", _("Needs re-authentication")
        FAILING = "failing", _("Failing")

    class Audience(models.TextChoices):
        ADMINISTRATORS = "administrators", _("Administrators")
        ADMINISTRATORS_AND_CONTRIBUTORS = (
            "administrators_and_contributors",
            _("Administrators and contributors"),
        )

    kind = models.CharField(_("type"), max_length=50, choices=registry.choices)
    display_name = models.CharField(_("display name"), max_length=200)
    who_can_use = models.CharField(
        _("who can use"), max_length=40, choices=Audience.choices, default=Audience.ADMINISTRATORS
    )
    consent_given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("consent given by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    consent_given_at = models.DateTimeField(_("consent given at"))
    export_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("export users"),
        blank=True,
        related_name="export_connections",
    )
    encrypted_credentials = models.TextField(editable=False, default="")
    status = models.CharField(
        _("status"), max_length=30, choices=Status.choices, default=Status.HEALTHY
    )
    last_error = models.TextField(_("last error"), blank=True, default="")
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["display_name", "id"]
        verbose_name = _("connection")
        verbose_name_plural = _("connections")
        permissions = [
            ("use_connection", _("Can use the connections shared with contributors")),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_healthy(self) -> bool:
        return self.status == self.Status.HEALTHY

    @property
    def needs_reauthentication(self) -> bool:
        return self.status == self.Status.NEEDS_REAUTHENTICATION

    @property
    def kind_label(self) -> str:
        return registry.label(self.kind)

    @property
    def icon(self) -> str:
        """Static path of the type's icon."""
        return registry.backend_class(self.kind).icon
