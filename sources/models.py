"""A source: a database table, view, query or file whose rows become profiles; its runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from sources.kinds import registry


class Source(models.Model):
    """Secrets (the password) live only in ``encrypted_secrets`` (a Fernet token, see
    ``core.crypto``) and are read and written only by ``sources.services``. Nothing renders them.

    ``mapping`` says which column fills which profile field: ``{"customer_id": column,
    "email": column, "first_name": column, "last_name": column, "attributes": {name: column}}``
    (only ``customer_id`` is required); ``field_types`` holds each mapped column's profile field
    type, taken from the source's column types when the mapping was saved."""

    class SyncMode(models.TextChoices):
        INCREMENTAL = "incremental", _("Incremental (rows past the cursor column's last value)")
        FULL = "full", _("Full (every row, compared with the profiles)")

    class Status(models.TextChoices):
        NEVER_RUN = "never_run", _("Never run")
        HEALTHY = "healthy", _("Healthy")
        FAILING = "failing", _("Failing")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=30, choices=registry.choices)
    connection_settings = models.JSONField(_("connection settings"), default=dict, blank=True)
    encrypted_secrets = models.TextField(editable=False, default="")
    read_table = models.CharField(_("table or view"), max_length=300, blank=True, default="")
    read_query = models.TextField(_("query"), blank=True, default="")
    mapping = models.JSONField(_("mapping"), default=dict, blank=True)
    field_types = models.JSONField(default=dict, blank=True)
    sync_mode = models.CharField(
        _("sync mode"), max_length=20, choices=SyncMode.choices, default=SyncMode.FULL
    )
    cursor_column = models.CharField(_("cursor column"), max_length=200, blank=True, default="")
    #: The last committed cursor value (``sources.kinds.base.cursor_to_json``): the next
    #: incremental run reads from here, less the overlap; a run that died resumes here.
    cursor_value = models.JSONField(null=True, blank=True)
    #: The version of the data the last complete reading read (a file's ETag and
    #: Last-Modified, ``sources.versions``): the next run reads only if it changed. Any edit
    #: of the source forgets it.
    file_version = models.JSONField(null=True, blank=True, editable=False)
    remove_missing = models.BooleanField(_("remove missing profiles"), default=False)
    on_schedule = models.BooleanField(_("run on the refresh schedule"), default=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEVER_RUN
    )
    last_error = models.TextField(_("last error"), blank=True, default="")
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("source")
        verbose_name_plural = _("sources")
        permissions = [("run_source", _("Can run sources"))]

    def __str__(self) -> str:
        return self.name

    @property
    def kind_label(self) -> str:
        return registry.label(self.kind)


class SourceRun(models.Model):
    """One reading of a source into the profiles, with its outcome and its row report (shaped
    like the CSV import's: ``rejected_rows`` holds ``{"line", "key", "reason"}``, the line
    being the row's place in the run's reading)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        AWAITING_APPROVAL = "awaiting_approval", _("Waiting for approval to remove profiles")
        SUCCEEDED = "succeeded", _("Succeeded")
        COMPLETED_WITH_ERRORS = "completed_with_errors", _("Completed with errors")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        #: The file had not changed since the last complete reading: nothing was read.
        FILE_UNCHANGED = "file_unchanged", _("File not changed")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("On demand")
        SCHEDULE = "schedule", _("Refresh schedule")

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    #: While a run of a source is in one of these states, no other run of it starts: one
    #: that waits for approval to remove profiles blocks the next (which would read the
    #: source again and judge the same removal on other keys).
    BLOCKING = (Status.QUEUED, Status.RUNNING, Status.AWAITING_APPROVAL)

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(
        _("status"), max_length=30, choices=Status.choices, default=Status.QUEUED
    )
    trigger = models.CharField(
        _("trigger"), max_length=20, choices=Trigger.choices, default=Trigger.MANUAL
    )
    sync_mode = models.CharField(_("sync mode"), max_length=20, choices=Source.SyncMode.choices)
    rows_read = models.PositiveBigIntegerField(_("rows read"), default=0)
    created_count = models.PositiveBigIntegerField(_("created"), default=0)
    updated_count = models.PositiveBigIntegerField(_("updated"), default=0)
    unchanged_count = models.PositiveBigIntegerField(_("unchanged"), default=0)
    rejected_count = models.PositiveBigIntegerField(_("rejected"), default=0)
    rejected_rows = models.JSONField(default=list, blank=True)
    warning_count = models.PositiveBigIntegerField(_("warnings"), default=0)
    warnings = models.JSONField(default=list, blank=True)
    removed_count = models.PositiveBigIntegerField(_("removed"), default=0)
    #: Profiles that a full run with "remove missing" would remove, when over the threshold.
    removal_pending = models.PositiveBigIntegerField(default=0)
    #: A full sync's progress: the last customer id of its last committed batch (it reads in
    #: customer id order). A run that dies keeps it, and the next run goes on after it (with
    #: the keys this one read, ``SourceKey``); a reading that ends clears it.
    key_after = models.JSONField(null=True, blank=True)
    #: The run that died and whose reading this one went on with (its counts included).
    resumed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cursor_start = models.JSONField(null=True, blank=True)
    cursor_end = models.JSONField(null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("queued"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("source run")
        verbose_name_plural = _("source runs")
        constraints = [
            # Never two runs of one source at once (a second request finds the first), a run
            # waiting for approval to remove profiles included.
            models.UniqueConstraint(
                fields=["source"],
                condition=models.Q(status__in=["queued", "running", "awaiting_approval"]),
                name="one_unfinished_run_per_source",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class SourceKey(models.Model):
    """A customer id that a source holds, and the run that last read it: finds a customer id
    read twice in one run (the later rows are rejected) and the profiles that a full run no
    longer finds (``remove_missing``). Written only by the runs of a source that removes
    missing profiles (``sources.keys``).

    Such a run writes one row per customer id read, so the table keeps only its unique
    constraint (which also serves every lookup by source): no foreign keys in the database
    (Django still cascades) and no index on the run. Checking the two foreign keys at each
    batch's commit and keeping the two indexes cost more than the insert itself (measured,
    200,000 keys: about 3 s of checks and 0.9 s of indexes on a 0.7 s insert)."""

    source = models.ForeignKey(
        Source, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    customer_id = models.CharField(max_length=255)
    run = models.ForeignKey(
        SourceRun,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "customer_id"], name="one_key_per_source")
        ]

    def __str__(self) -> str:
        return self.customer_id


class FieldOrigin(models.Model):
    """Which source last set a profile field (the README's "More than one source")."""

    field_name = models.CharField(_("field"), max_length=255, unique=True)
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="fields_set")
    run = models.ForeignKey(SourceRun, on_delete=models.SET_NULL, null=True, related_name="+")
    set_at = models.DateTimeField(_("set"), auto_now=True)

    class Meta:
        ordering = ["field_name"]
        verbose_name = _("field origin")
        verbose_name_plural = _("field origins")

    def __str__(self) -> str:
        return self.field_name
