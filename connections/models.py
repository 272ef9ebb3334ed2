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


class ConsentReadBack(models.Model):
    """The consent read-back of one connection: where it stands and what its last read did.

    One row per connection, not one per read: what a read needs to resume (the cursor of its
    last stored page) and to start (``since``, the start of the last complete read) belongs to
    the connection, and each row is small and updated in place with every page. What a person
    started is in the audit log; the records themselves are ``segments.ConsentRecord``.
    """

    class Status(models.TextChoices):
        NEVER = "never", _("Never read")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Reading")
        RETRYING = "retrying", _("Waiting to try again")
        SUCCEEDED = "succeeded", _("Read")
        FAILED = "failed", _("Failed")

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.RETRYING)

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, related_name="consent_read_back"
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEVER
    )
    #: The start of the last complete read: the next read asks for what changed since then.
    since = models.DateTimeField(_("read since"), null=True, blank=True)
    #: The service's cursor after the last stored page of a read not yet complete ("" between
    #: reads): a read that stopped goes on from here.
    cursor = models.TextField(blank=True, default="")
    pages_read = models.PositiveIntegerField(_("pages read"), default=0)
    read_count = models.PositiveBigIntegerField(_("read"), default=0)
    new_count = models.PositiveBigIntegerField(_("new records"), default=0)
    invalid_count = models.PositiveBigIntegerField(_("invalid addresses"), default=0)
    last_error = models.TextField(_("last error"), blank=True, default="")
    #: When the current (or last) read began; it becomes ``since`` when the read completes.
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    #: When the last complete read finished.
    last_read_at = models.DateTimeField(_("last read"), null=True, blank=True)

    class Meta:
        verbose_name = _("consent read-back")
        verbose_name_plural = _("consent read-backs")

    def __str__(self) -> str:
        return f"{self.connection}: {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
