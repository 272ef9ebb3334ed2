"""Unified customer profiles, the catalogue of their fields, and segments of them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.consent import Channel, ConsentState


class Profile(models.Model):
    """One unified customer. ``email`` is kept as imported: exports validate it, not the import."""

    customer_id = models.CharField(_("customer id"), max_length=255, unique=True)
    email = models.CharField(_("email"), max_length=320, blank=True, default="")
    first_name = models.CharField(_("first name"), max_length=200, blank=True, default="")
    last_name = models.CharField(_("last name"), max_length=200, blank=True, default="")
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    #: Which writer last set each field (``segments.origins``): ``{field: "import" | "api" |
    #: source id}``; NULL until a write records one.
    field_origins = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), db_default=Now())
    # Indexed: the latest change is part of what tells a refresh that nothing changed.
    updated_at = models.DateTimeField(_("updated"), db_default=Now(), db_index=True)

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")
        permissions = [("import_profiles", _("Can import profiles"))]

    def __str__(self) -> str:
        return self.customer_id

    def save(self, *args, **kwargs) -> None:
        # Imports stamp updated_at in SQL; a save through the ORM must stamp it too.
        if self.pk is not None:
            self.updated_at = timezone.now()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "updated_at"}
        super().save(*args, **kwargs)

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class ProfileDeletions(models.Model):
    """One row counting the statements that removed profiles, kept by a database trigger
    (migration 0003). With the highest id and the latest ``updated_at`` it tells a refresh that
    the profiles did not change, without counting a million rows."""

    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("profile deletions")

    def __str__(self) -> str:
        return str(self.count)


class ProfileField(models.Model):
    """A field that profiles have: the four built-in ones and every imported attribute."""

    class DataType(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        DATETIME = "datetime", _("Date and time")
        BOOLEAN = "boolean", _("Yes / no")

    name = models.CharField(_("name"), max_length=255, unique=True)
    data_type = models.CharField(
        _("type"), max_length=10, choices=DataType.choices, default=DataType.TEXT
    )
    is_builtin = models.BooleanField(_("built in"), default=False)
    profile_count = models.PositiveIntegerField(_("profiles with a value"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-is_builtin", "name"]
        verbose_name = _("profile field")
        verbose_name_plural = _("profile fields")

    def __str__(self) -> str:
        return self.name


class ProfileImport(models.Model):
    """One CSV import, from the upload page or the command, with its outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        COMPLETED_WITH_ERRORS = "completed_with_errors", _("Completed with errors")
        FAILED = "failed", _("Failed")

    file_name = models.CharField(_("file"), max_length=255)
    stored_path = models.CharField(max_length=500, blank=True, default="")
    column_map = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=30, choices=Status.choices, default=Status.QUEUED
    )
    rows_read = models.PositiveIntegerField(_("rows read"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    unchanged_count = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected_count = models.PositiveIntegerField(_("rejected"), default=0)
    rejected_rows = models.JSONField(default=list, blank=True)
    #: Values kept shortened: ``{"line", "field", "original_length", "kept_length"}`` each.
    warning_count = models.PositiveIntegerField(_("warnings"), default=0)
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(_("error"), blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("profile import")

    def __str__(self) -> str:
        return self.file_name

    @property
    def is_finished(self) -> bool:
        return self.status not in (self.Status.QUEUED, self.Status.RUNNING)


class Segment(models.Model):
    """A named rule tree over profile fields; its members are materialised on refresh."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        INACTIVE = "inactive", _("Inactive")
        FAILED = "failed", _("Failed")

    class RefreshState(models.TextChoices):
        IDLE = "idle", _("Idle")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Refreshing")

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True, default="")
    rules = models.JSONField(_("rules"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.INACTIVE
    )
    refresh_state = models.CharField(
        max_length=10, choices=RefreshState.choices, default=RefreshState.IDLE
    )
    refresh_requested_at = models.DateTimeField(null=True, blank=True)
    member_count = models.PositiveIntegerField(_("members"), default=0)
    last_refreshed_at = models.DateTimeField(_("last refreshed"), null=True, blank=True)
    last_refresh_seconds = models.FloatField(null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    is_active = models.BooleanField(_("active"), default=True)
    is_static = models.BooleanField(_("static"), default=False)
    # The segments the rules read members from; kept in step with the rules on every save.
    uses = models.ManyToManyField(
        "self", symmetrical=False, related_name="used_by", blank=True, verbose_name=_("uses")
    )
    # What the last refresh read (rules, profiles, used segments, the day): see membership.py.
    inputs_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # Goes up whenever the members change, so the segments that use this one notice.
    members_version = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        permissions = [("refresh_segment", _("Can refresh segments"))]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("segments:detail", args=[self.pk])

    @property
    def is_refreshing(self) -> bool:
        return self.refresh_state != self.RefreshState.IDLE


class SegmentMember(models.Model):
    """Materialised membership: written only by set-based SQL in ``segments.membership``.

    No database foreign-key constraints: every row is inserted from a SELECT on the profiles
    table in the same statement, and Django's cascades remove members of deleted segments and
    profiles. Without the per-row constraint triggers a million-member refresh is several times
    faster. The primary key (segment, profile) serves lookups by segment.
    """

    pk = models.CompositePrimaryKey("segment", "profile")
    segment = models.ForeignKey(
        Segment,
        on_delete=models.CASCADE,
        related_name="members",
        db_index=False,
        db_constraint=False,
    )
    profile = models.ForeignKey(
        Profile, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.profile_id}"


class ProfileChange(models.Model):
    """A profile whose row or segment memberships were written, with the transaction that
    wrote them: kept by database triggers (migration 0009, PostgreSQL) for the exports that
    compute only what changed (``segments.changes``). Without a profile id, a statement wrote
    too many rows to list: any profile may have changed."""

    profile_id = models.BigIntegerField(null=True)
    #: ``pg_current_xact_id()`` of the writing transaction.
    transaction_id = models.BigIntegerField(db_index=True)

    class Meta:
        verbose_name = _("profile change")

    def __str__(self) -> str:
        return f"{self.profile_id}@{self.transaction_id}"


class SegmentRefresh(models.Model):
    """One refresh of a segment: the member count after it and who joined and left."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="refreshes")
    refreshed_at = models.DateTimeField(_("refreshed"), default=timezone.now)
    member_count = models.PositiveIntegerField(_("members"))
    joined = models.PositiveIntegerField(_("joined"), default=0)
    left = models.PositiveIntegerField(_("left"), default=0)
    unchanged = models.BooleanField(_("inputs unchanged"), default=False)

    class Meta:
        ordering = ["-refreshed_at", "-id"]
        indexes = [models.Index(fields=["segment", "-refreshed_at"])]
        verbose_name = _("segment refresh")

    def __str__(self) -> str:
        return f"{self.segment_id}@{self.refreshed_at:%Y-%m-%d %H:%M}"


class ConsentRecord(models.Model):
    """A person who unsubscribed, bounced, complained or was cleaned at a connection: read back
    from the service (``connections`` consent read-back) and kept per address and channel.

    Keyed by the address (trimmed, lower-case), not by one profile: every profile with that
    address is covered, as the exports' exclusions are. Nothing here ever lifts a record: a
    person who subscribes again at the service is not re-subscribed by us.
    """

    State = ConsentState

    email = models.CharField(_("email"), max_length=320)
    channel = models.CharField(
        _("channel"), max_length=10, choices=Channel.choices, default=Channel.EMAIL
    )
    state = models.CharField(_("state"), max_length=20, choices=ConsentState.choices)
    # Kept when the connection is deleted (the person's wish outlives it), with its name.
    # Not a database constraint: a read-back stores 1,000 records a page, and the key of each
    # would be checked again at commit (Django sets it to NULL when the connection goes).
    connection = models.ForeignKey(
        "connections.Connection",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
        verbose_name=_("connection"),
    )
    connection_name = models.CharField(_("connection"), max_length=200, blank=True, default="")
    # The service's list it happened in; "" when it holds for the whole account.
    list_id = models.CharField(_("list"), max_length=100, blank=True, default="")
    # When it happened by the service's clock; None when the service does not say.
    occurred_at = models.DateTimeField(_("when"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True, default="")
    recorded_at = models.DateTimeField(_("recorded"), db_default=Now())

    class Meta:
        ordering = ["email", "-occurred_at", "id"]
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        constraints = [
            # Also the index the exports' exclusion reads by address (and connection).
            models.UniqueConstraint(
                fields=["email", "connection", "list_id", "state", "channel"],
                name="one_consent_record_per_address_connection_list_state",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email}: {self.state}"
