"""Exports (what to send where) and their runs (each push, with its counts and failures)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from connections.models import Connection
from segments.models import Segment


class Export(models.Model):
    """Segments, matched to a destination list through one connection."""

    display_name = models.CharField(_("display name"), max_length=200)
    connection = models.ForeignKey(
        Connection,
        verbose_name=_("connection"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="exports",
        help_text=_("Empty when the export was detached from its connection."),
    )
    list_id = models.CharField(_("destination list"), max_length=200)
    list_name = models.CharField(_("destination list name"), max_length=200, blank=True, default="")
    email_field = models.CharField(_("email"), max_length=255, default="email")
    first_name_field = models.CharField(_("first name"), max_length=255, blank=True, default="")
    last_name_field = models.CharField(_("last name"), max_length=255, blank=True, default="")
    segments = models.ManyToManyField(Segment, verbose_name=_("segments"), related_name="exports")
    schedule_enabled = models.BooleanField(_("runs on schedule"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["display_name", "id"]
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        permissions = [("run_export", _("Can run exports"))]

    def __str__(self) -> str:
        return self.display_name

    def get_absolute_url(self) -> str:
        return reverse("exports:detail", args=[self.pk])

    @property
    def is_detached(self) -> bool:
        return self.connection_id is None


class ExportRun(models.Model):
    """One push of an export. States move only through ``exports.runs`` (guarded transitions)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Successful")
        COMPLETED_WITH_WARNINGS = "completed_with_warnings", _("Completed with warnings")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        CANCELLED = "cancelled", _("Cancelled")

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        USER = "user", _("User")

    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(
        _("status"), max_length=30, choices=Status.choices, default=Status.QUEUED
    )
    trigger = models.CharField(_("started by"), max_length=10, choices=Trigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    profiles_total = models.PositiveIntegerField(_("profiles"), default=0)
    to_send = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(_("sent"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    # The highest recipient position up to which every batch was acknowledged by the service.
    checkpoint = models.PositiveIntegerField(default=0)
    recipients_ready = models.BooleanField(default=False)
    cancel_requested = models.BooleanField(default=False)
    worker_token = models.CharField(max_length=64, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    created_at = models.DateTimeField(_("queued"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("export run")
        constraints = [
            # Never two runs of one export at once, whatever the workers do.
            models.UniqueConstraint(
                fields=["export"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_run_per_export",
            )
        ]

    def __str__(self) -> str:
        return f"{self.export_id}#{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def processed(self) -> int:
        return self.sent + self.failed + self.skipped

    @property
    def percent(self) -> int:
        if not self.profiles_total:
            return 100 if not self.is_active else 0
        return min(100, int(100 * self.processed / self.profiles_total))


class ExportRunRecipient(models.Model):
    """The run's de-duplicated recipients in a fixed order, so that a run can resume at a position.

    Filled once per run by one INSERT ... SELECT; no database foreign keys, for the same reason
    as ``SegmentMember``. Removed when the run finishes.
    """

    pk = models.CompositePrimaryKey("run", "position")
    run = models.ForeignKey(
        ExportRun, on_delete=models.CASCADE, db_index=False, db_constraint=False, related_name="+"
    )
    position = models.PositiveIntegerField()
    profile = models.ForeignKey(
        "segments.Profile",
        on_delete=models.DO_NOTHING,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )
    email = models.CharField(max_length=320)
    # Copied at build time so that reading a batch is one index range scan, without a join.
    customer_id = models.CharField(max_length=255, default="")
    first_name = models.TextField(default="")
    last_name = models.TextField(default="")

    def __str__(self) -> str:
        return f"{self.run_id}:{self.position}"


class ExportRunFailure(models.Model):
    """A profile that was not delivered, and why: refused by the service or skipped by us."""

    run = models.ForeignKey(ExportRun, on_delete=models.CASCADE, related_name="failures")
    customer_id = models.CharField(_("customer id"), max_length=255, blank=True, default="")
    email = models.CharField(_("email"), max_length=320, blank=True, default="")
    code = models.CharField(_("code"), max_length=50)
    reason = models.TextField(_("reason"))
    skipped = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.email}: {self.code}"


class RefreshSchedule(models.Model):
    """Admin > System > Schedule: when segments refresh and scheduled exports run (one row)."""

    class Frequency(models.TextChoices):
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")

    MAX_TIMES = 4

    enabled = models.BooleanField(_("scheduled refresh is on"), default=False)
    frequency = models.CharField(
        _("frequency"), max_length=10, choices=Frequency.choices, default=Frequency.DAILY
    )
    # ISO weekdays, 1 = Monday ... 7 = Sunday; used when weekly.
    weekdays = models.JSONField(_("days"), default=list, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC")
    # "HH:MM" strings, at most MAX_TIMES.
    times = models.JSONField(_("times"), default=list, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("refresh schedule")
        permissions = [
            ("change_schedule", _("Can change the refresh schedule")),
            ("view_status", _("Can view the system status")),
        ]
        default_permissions = ()

    def __str__(self) -> str:
        return "refresh schedule"

    @classmethod
    def load(cls) -> RefreshSchedule:
        schedule, _created = cls.objects.get_or_create(pk=1)
        return schedule
