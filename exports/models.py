"""Exports (what to send where) and their runs (each push, with its counts and failures)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from connections.models import Connection
from connections.types.base import EMAIL_KEY, FIRST_NAME_KEY, LAST_NAME_KEY, FieldType
from segments.models import Segment

#: The destination keys of the services' built-in fields (``DestinationField.key``).
EMAIL, FIRST_NAME, LAST_NAME = EMAIL_KEY, FIRST_NAME_KEY, LAST_NAME_KEY
BUILTIN_DESTINATION_KEYS = (EMAIL, FIRST_NAME, LAST_NAME)
#: Their names, as the rows keep them (the pages show them translated).
BUILTIN_NAMES = {EMAIL: "Email", FIRST_NAME: "First name", LAST_NAME: "Last name"}


class Export(models.Model):
    """Segments, matched to a destination list through one connection."""

    #: What a user sets on an export (the form, ``export_save``, ``export_duplicate``): a field
    #: added here is shown, saved and copied everywhere. ``list_name`` comes with the list id.
    SETTINGS_FIELDS = (
        "display_name",
        "connection",
        "list_id",
        "list_name",
        "segments",
        "schedule_enabled",
        "sync_mode",
        "fixed_tags",
        "tags_field",
        "remove_tags_on_leave",
        "new_subscriber_status",
        "consent_field",
        "consent_default",
        "guard_max_removal_percent",
        "guard_max_removals",
        "guard_max_add_factor",
    )

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
    segments = models.ManyToManyField(Segment, verbose_name=_("segments"), related_name="exports")

    class SyncMode(models.TextChoices):
        ADD_AND_UPDATE = "add_update", _("Add and update")
        MIRROR = "mirror", _("Mirror")

    schedule_enabled = models.BooleanField(_("run on schedule"), default=True)
    # Why the schedule paused itself (``exports.services``); cleared when it is turned on again.
    schedule_paused_reason = models.TextField(_("why the schedule paused"), blank=True, default="")
    sync_mode = models.CharField(
        _("sync mode"), max_length=20, choices=SyncMode.choices, default=SyncMode.ADD_AND_UPDATE
    )
    resend_next_run = models.BooleanField(_("resend everything on the next run"), default=False)
    # What the export sends besides the mapped fields (``FieldMapping``): tags (services with
    # ``Backend.supports_tags``), the status of new subscribers and their consent.
    fixed_tags = models.JSONField(_("tags"), default=list, blank=True)
    tags_field = models.CharField(_("tags from the field"), max_length=255, blank=True, default="")
    remove_tags_on_leave = models.BooleanField(
        _("people who leave lose the tags instead of being removed"), default=False
    )
    new_subscriber_status = models.CharField(
        _("status of new subscribers"), max_length=20, blank=True, default=""
    )
    consent_field = models.CharField(
        _("consent from the field"), max_length=255, blank=True, default=""
    )

    class Consent(models.TextChoices):
        SERVICE_RULE = "", _("As the service decides")
        YES = "yes", _("Yes")
        NO = "no", _("No")

    consent_default = models.CharField(
        _("consent"),
        max_length=3,
        blank=True,
        default=Consent.SERVICE_RULE,
        choices=Consent.choices,
    )
    # The pre-flight guard's thresholds for this export (``exports.guard``); blank = the defaults
    # of Admin > System > Safety (``GuardDefaults``).
    guard_max_removal_percent = models.PositiveSmallIntegerField(
        _("stop when a run would remove more than this share of the list (%)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
    )
    guard_max_removals = models.PositiveIntegerField(
        _("stop when a run would remove more than this many addresses"), null=True, blank=True
    )
    guard_max_add_factor = models.PositiveSmallIntegerField(
        _("stop when a run would add more than this many times the list's size"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
    )
    # The last full run of the export, whose ``inputs_fingerprint`` tells the next run whether
    # anything it would send changed (``exports.unchanged``); None after an erasure.
    inputs_run = models.ForeignKey(
        "ExportRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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

    def save(self, *args, **kwargs) -> None:
        adding = self._state.adding
        super().save(*args, **kwargs)
        changes = self.__dict__.pop("_unsaved_builtin_rows", {})
        if adding:
            changes.setdefault(EMAIL, EMAIL)
        if changes:
            self._write_builtin_rows(changes)

    def get_absolute_url(self) -> str:
        return reverse("exports:detail", args=[self.pk])

    @property
    def is_mirror(self) -> bool:
        return self.sync_mode == self.SyncMode.MIRROR

    # The profile fields of the built-in destination fields: their mapping rows, read and set
    # by name (``Export(first_name_field="first_name")``, as before they were rows). What is
    # set is written to the rows when the export is saved; a new export always gets an e-mail
    # row, by default the built-in ``email``.

    @property
    def email_field(self) -> str:
        return self._builtin_source(EMAIL) or EMAIL

    @email_field.setter
    def email_field(self, profile_field: str) -> None:
        self._builtin_changes[EMAIL] = profile_field

    @property
    def first_name_field(self) -> str:
        return self._builtin_source(FIRST_NAME)

    @first_name_field.setter
    def first_name_field(self, profile_field: str) -> None:
        self._builtin_changes[FIRST_NAME] = profile_field

    @property
    def last_name_field(self) -> str:
        return self._builtin_source(LAST_NAME)

    @last_name_field.setter
    def last_name_field(self, profile_field: str) -> None:
        self._builtin_changes[LAST_NAME] = profile_field

    @property
    def _builtin_changes(self) -> dict[str, str]:
        return self.__dict__.setdefault("_unsaved_builtin_rows", {})

    def _builtin_source(self, key: str) -> str:
        if key in self._builtin_changes:
            return self._builtin_changes[key]
        rows = self.field_rows()
        return next((row.profile_field for row in rows if row.destination_key == key), "")

    def _write_builtin_rows(self, changes: dict[str, str]) -> None:
        rows = {row.destination_key: row for row in self.mappings.all()}
        last = max((row.position for row in rows.values()), default=-1)
        for key in BUILTIN_DESTINATION_KEYS:
            if key not in changes:
                continue
            profile_field, row = changes[key], rows.get(key)
            if not profile_field and row is not None:
                row.delete()
            elif profile_field and row is not None:
                FieldMapping.objects.filter(pk=row.pk).update(profile_field=profile_field)
            elif profile_field:
                last += 1
                FieldMapping.objects.create(
                    export=self,
                    position=last,
                    profile_field=profile_field,
                    destination_key=key,
                    destination_name=BUILTIN_NAMES[key],
                )
        getattr(self, "_prefetched_objects_cache", {}).pop("mappings", None)

    def field_rows(self) -> list[FieldMapping]:
        """The mapping rows in order, read once per instance (as ``mappings`` prefetched: saving
        rows through ``exports.mapping`` or the built-in setters forgets them)."""
        if self.pk is None:
            return []
        models.prefetch_related_objects([self], "mappings")
        return sorted(self.mappings.all(), key=lambda row: row.position)


class FieldMapping(models.Model):
    """One row of an export's mapping: a profile field sent into a destination field.

    The e-mail, first name and last name are rows too, with the keys ``email``,
    ``first_name`` and ``last_name``. The destination's name and type are kept as the service
    had them when the export was saved (its key is what is sent)."""

    class WhenEmpty(models.TextChoices):
        LEAVE = "leave", _("Leave the service's value")
        CLEAR = "clear", _("Clear the service's value")

    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="mappings")
    position = models.PositiveSmallIntegerField(_("position"))
    profile_field = models.CharField(_("profile field"), max_length=255)
    destination_key = models.CharField(_("destination field"), max_length=255)
    destination_name = models.CharField(
        _("destination field name"), max_length=255, blank=True, default=""
    )
    destination_type = models.CharField(
        _("destination field type"),
        max_length=20,
        choices=[(kind.value, kind.value) for kind in FieldType],
        default=FieldType.TEXT,
    )
    when_empty = models.CharField(
        _("when empty"), max_length=5, choices=WhenEmpty.choices, default=WhenEmpty.LEAVE
    )

    class Meta:
        ordering = ["export", "position"]
        verbose_name = _("field mapping")
        constraints = [
            models.UniqueConstraint(
                fields=["export", "destination_key"], name="one_mapping_per_destination_field"
            ),
            models.UniqueConstraint(fields=["export", "position"], name="mapping_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_field} → {self.destination_key}"

    @property
    def is_builtin(self) -> bool:
        return self.destination_key in BUILTIN_DESTINATION_KEYS

    @property
    def clears(self) -> bool:
        return self.when_empty == self.WhenEmpty.CLEAR


class RunStatus(models.TextChoices):
    """``ExportRun.Status``; declared outside the model so that its ``Meta`` can name them."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Successful")
    COMPLETED_WITH_WARNINGS = "completed_with_warnings", _("Completed with warnings")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")
    CANCELLED = "cancelled", _("Cancelled")
    # Stopped by the pre-flight guard (``exports.guard``) before sending anything: its
    # recipients are kept until someone approves (it is queued again) or discards it.
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
    # Someone discarded a run that awaited approval: it sent nothing.
    DISCARDED = "discarded", _("Discarded")


#: ``ExportRun.ACTIVE_STATUSES``: a run in one of these is on its way (queued or running).
ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
#: ``ExportRun.HOLDING_STATUSES``: a run in one of these holds its export, one at a time; a run
#: awaiting approval holds it too (no other run starts until it is approved or discarded).
HOLDING_RUN_STATUSES = (*ACTIVE_RUN_STATUSES, RunStatus.AWAITING_APPROVAL)


class ExportRun(models.Model):
    """One push of an export. States move only through ``exports.runs`` (guarded transitions)."""

    Status = RunStatus
    ACTIVE_STATUSES = ACTIVE_RUN_STATUSES
    HOLDING_STATUSES = HOLDING_RUN_STATUSES
    #: A run in one of these has ended for good: ``exports.runs`` sets its ``finished_at``.
    FINISHED_STATUSES = (
        Status.SUCCEEDED,
        Status.COMPLETED_WITH_WARNINGS,
        Status.FAILED,
        Status.SKIPPED,
        Status.CANCELLED,
        Status.DISCARDED,
    )
    #: The finished runs that went through to the end and delivered.
    DELIVERED_STATUSES = (Status.SUCCEEDED, Status.COMPLETED_WITH_WARNINGS)

    #: The run's counts, in the order the pages, the API and the webhook payload show them.
    COUNTS = (
        "sent",
        "added",
        "updated",
        "unchanged",
        "removed",
        "failed",
        "skipped",
        "excluded",
        "warnings",
    )
    #: The counts that together account for every address the run considered (its members and
    #: the addresses to remove): each is added, updated, unchanged, removed, failed, skipped or
    #: excluded (``Exclusion``).
    OUTCOME_COUNTS = ("added", "updated", "unchanged", "removed", "failed", "skipped", "excluded")
    #: The counts that each acknowledged batch adds to; the others are known before the first.
    #: ``warnings`` counts records sent with a value the service had to change (shortened);
    #: they are sent, so in another count too.
    BATCH_COUNTS = ("sent", "added", "updated", "removed", "failed", "warnings")

    class WaitingFor(models.TextChoices):
        """Why a running run sends nothing for now, though it goes on by itself."""

        NOTHING = "", _("Nothing")
        REDIS = (
            "redis",
            _(
                "Redis, through which the workers share the service's limits, cannot be reached. "
                "The run goes on when it answers again; nothing is lost meanwhile."
            ),
        )

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
    added = models.PositiveIntegerField(_("added"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    to_remove = models.PositiveIntegerField(default=0)
    # The position up to which the sync state holds what the service acknowledged.
    synced_up_to = models.PositiveBigIntegerField(default=0)
    removed = models.PositiveIntegerField(_("removed"), default=0)
    # The run whose refused records this run sends again ("Retry failed records"), if any.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    failed = models.PositiveIntegerField(_("failed"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    # Members no export sends (Admin > Exclusions), listed among the skipped with the rule.
    excluded = models.PositiveIntegerField(_("excluded"), default=0)
    warnings = models.PositiveIntegerField(_("warnings"), default=0)
    # The recipient position (a profile id) up to which the service acknowledged every batch.
    checkpoint = models.PositiveBigIntegerField(default=0)
    recipients_ready = models.BooleanField(default=False)
    # A digest of what the run's recipients were computed from (``exports.unchanged``).
    inputs_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # The run found nothing changed since the export's last full run, and sent nothing.
    nothing_changed = models.BooleanField(_("nothing changed"), default=False)
    cancel_requested = models.BooleanField(default=False)
    # The pre-flight guard (``exports.guard``): the list's size when the run computed its
    # recipients (the addresses the sync state holds as in the list), the adds it planned, why
    # it stopped (stored, shown in the reader's language), and who approved or discarded it.
    list_size = models.PositiveIntegerField(_("list size before the run"), null=True, blank=True)
    to_add = models.PositiveIntegerField(default=0)
    held_because = models.TextField(blank=True, default="")
    approved = models.BooleanField(default=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    waiting_for = models.CharField(
        max_length=10, blank=True, default=WaitingFor.NOTHING, choices=WaitingFor.choices
    )
    # Profiles per second over the last moments (the time left is estimated from it).
    recent_per_second = models.FloatField(null=True, blank=True)
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
                condition=Q(status__in=list(HOLDING_RUN_STATUSES)),
                name="one_active_run_per_export",
            )
        ]

    def __str__(self) -> str:
        return f"{self.export_id}#{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_succeeded(self) -> bool:
        return self.status == self.Status.SUCCEEDED

    @property
    def is_completed_with_warnings(self) -> bool:
        return self.status == self.Status.COMPLETED_WITH_WARNINGS

    @property
    def is_cancelled(self) -> bool:
        return self.status == self.Status.CANCELLED

    @property
    def is_failed(self) -> bool:
        return self.status == self.Status.FAILED

    @property
    def is_awaiting_approval(self) -> bool:
        return self.status == self.Status.AWAITING_APPROVAL

    @property
    def list_size_after(self) -> int | None:
        """The list's size once the run has sent what it computed (None before it knows)."""
        if self.list_size is None:
            return None
        return max(0, self.list_size + self.to_add - self.to_remove)

    @property
    def processed(self) -> int:
        return (
            self.sent + self.failed + self.skipped + self.excluded + self.unchanged + self.removed
        )

    @property
    def percent(self) -> int:
        work = self.profiles_total + self.to_remove
        if not work:
            return 100 if not self.is_active else 0
        return min(100, int(100 * self.processed / work))


class SyncState(models.Model):
    """What the service last confirmed for one address of one export.

    Written only after the service acknowledged the record, so a record that failed is sent
    again on the next run instead of being taken for unchanged.
    """

    class State(models.TextChoices):
        IN_LIST = "in_list", _("In the list")
        OPTED_OUT = "opted_out", _("Opted out at the service")
        REMOVED = "removed", _("Removed by a mirror run")
        # The person was erased (exports/erasures.py): runs leave the address alone, and the
        # erasure deletes the person at the service, whatever the export's sync mode.
        ERASING = "erasing", _("Erased: being deleted at the service")

    # The primary key is the only index: a first run writes a million rows here, and every
    # further index would be written for each of them (the key serves lookups by export).
    pk = models.CompositePrimaryKey("export", "email")
    export = models.ForeignKey(
        Export, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+"
    )
    email = models.CharField(max_length=320)
    fields_hash = models.CharField(max_length=32)
    state = models.CharField(max_length=10, choices=State.choices, default=State.IN_LIST)
    # Runs are deleted only with their export, and its sync state goes with it.
    confirmed_by = models.ForeignKey(
        ExportRun,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    confirmed_at = models.DateTimeField(auto_now=True)
    # The tags the export last sent this address from its tags field (a list or the text as the
    # profile held it), kept only by mirror exports that take tags off leavers: a leaver loses
    # them with the export's fixed tags. NULL otherwise.
    tags = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.export_id}:{self.email}"


class Refusal(models.Model):
    """A record the service refused for a reason that will not change by itself (an invalid or
    fake-looking address, a value it does not take: ``Backend.lasting_refusal_codes``), with the
    fields it refused. Runs count the address as still refused, with this reason, and do not
    send it again until its fields change or someone selects **Retry failed records**."""

    pk = models.CompositePrimaryKey("export", "email")
    export = models.ForeignKey(
        Export, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+"
    )
    email = models.CharField(max_length=320)
    fields_hash = models.CharField(max_length=32)
    code = models.CharField(max_length=50)
    reason = models.TextField()
    refused_by = models.ForeignKey(
        ExportRun,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    refused_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.export_id}:{self.email}: {self.code}"


class ExportRunFailure(models.Model):
    """A profile that was not delivered, and why: refused by the service or skipped by us; or
    one delivered with a warning (``warning``)."""

    # Not a database constraint: a run lists its skipped members in one statement, tens of
    # thousands of rows, and the key of each would be checked again at commit.
    # Rows are written only for the run being executed, and deleted with it by Django.
    run = models.ForeignKey(
        ExportRun, on_delete=models.CASCADE, db_constraint=False, related_name="failures"
    )
    customer_id = models.CharField(_("customer id"), max_length=255, blank=True, default="")
    email = models.CharField(_("email"), max_length=320, blank=True, default="")
    code = models.CharField(_("code"), max_length=50)
    reason = models.TextField(_("reason"))
    skipped = models.BooleanField(default=False)
    # Delivered, but with a value the service had to change (``RecordWarning``): listed so
    # that nothing changes silently, and not a failure (the sync state records it as sent).
    warning = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.email}: {self.code}"


class Exclusion(models.Model):
    """One rule of Admin > Exclusions: an address, a domain or a segment whose members no
    export ever sends, in any mode; mirror exports remove them from their lists.

    A domain matches the address's domain exactly: ``example.org`` excludes ``a@example.org``
    but not ``a@mail.example.org`` (add each subdomain to exclude it too). A segment excludes
    the addresses of its members (by each export's email field), so another profile with the
    same address is excluded too. Addresses and domains are stored lower-case and trimmed.
    """

    class Kind(models.TextChoices):
        ADDRESS = "address", _("Address")
        DOMAIN = "domain", _("Domain")
        SEGMENT = "segment", _("Segment")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    value = models.CharField(_("address or domain"), max_length=320, blank=True, default="")
    # Protected: removing a segment that excludes people would send them again.
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exclusions",
        verbose_name=_("segment"),
    )
    note = models.CharField(_("note"), max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("added"), auto_now_add=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        ordering = ["kind", "value", "id"]
        verbose_name = _("exclusion")
        default_permissions = ()
        permissions = [("manage_exclusion", _("Can add, change and remove exclusions"))]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "value"],
                condition=~Q(kind="segment"),
                name="one_exclusion_per_address_or_domain",
            ),
            models.UniqueConstraint(fields=["segment"], name="one_exclusion_per_segment"),
            models.CheckConstraint(
                condition=(Q(kind="segment", segment__isnull=False, value=""))
                | (Q(kind__in=["address", "domain"], segment__isnull=True) & ~Q(value="")),
                name="exclusion_has_its_kind_of_value",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.SEGMENT:
            return str(_("Exclusion of segment “%(name)s”") % {"name": self.segment})
        return str(_("Exclusion of %(value)s") % {"value": self.value})

    def get_absolute_url(self) -> str:
        return reverse("exclusions:edit", args=[self.pk])


class ConsentRule(models.Model):
    """Admin > Exclusions: whom a consent record (``segments.ConsentRecord``: a person who
    unsubscribed, bounced, complained, was cleaned or suppressed at a connection) keeps out of
    the exports (one row). A record whose connection was deleted keeps the person out of every
    export whatever the scope: the safe side."""

    class Scope(models.TextChoices):
        EVERY_EXPORT = (
            "every_export",
            _(
                "A person who unsubscribed or bounced at any connection is excluded from every "
                "export"
            ),
        )
        SAME_CONNECTION = (
            "same_connection",
            _(
                "A person who unsubscribed or bounced at a connection is excluded only from that "
                "connection's exports"
            ),
        )

    scope = models.CharField(
        _("consent records exclude"),
        max_length=20,
        choices=Scope.choices,
        default=Scope.EVERY_EXPORT,
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("consent rule")
        default_permissions = ()

    def __str__(self) -> str:
        return str(_("Consent rule"))

    @classmethod
    def load(cls) -> ConsentRule:
        rule, _created = cls.objects.get_or_create(pk=1)
        return rule


class Alert(models.Model):
    """An e-mail sent about an export or a connection (``exports.alerts``); the rows are also
    what limits alerts to one a day."""

    class Kind(models.TextChoices):
        RUN_FAILED = "run_failed", _("Run failed")
        RUN_REFUSED = "run_refused", _("Records refused by the service")
        SCHEDULE_PAUSED = "schedule_paused", _("Schedule paused")
        NEEDS_REAUTHENTICATION = "needs_reauthentication", _("Connection needs re-authentication")
        RUN_AWAITING_APPROVAL = "run_awaiting_approval", _("Run awaiting approval")

    export = models.ForeignKey(
        Export, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    sent_at = models.DateTimeField(_("sent"), default=timezone.now)
    recipients = models.JSONField(_("recipients"), default=list)

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = _("alert")
        indexes = [
            models.Index(fields=["export", "sent_at"], name="alert_export_sent"),
            models.Index(fields=["connection", "sent_at"], name="alert_connection_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.sent_at:%Y-%m-%d %H:%M}"


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


class GuardDefaults(models.Model):
    """Admin > System > Safety: when the pre-flight guard stops a run (one row); an export's own
    thresholds, where set, replace these (``exports.guard``)."""

    max_removal_percent = models.PositiveSmallIntegerField(
        _("stop when a run would remove more than this share of the list (%)"),
        default=10,
        validators=[MaxValueValidator(100)],
    )
    max_removals = models.PositiveIntegerField(
        _("stop when a run would remove more than this many addresses"), default=5000
    )
    max_add_factor = models.PositiveSmallIntegerField(
        _("stop when a run would add more than this many times the list's size"),
        default=10,
        validators=[MinValueValidator(1)],
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("safety thresholds")
        default_permissions = ()
        permissions = [("change_guard_defaults", _("Can change the safety thresholds"))]

    def __str__(self) -> str:
        return "safety thresholds"

    @classmethod
    def load(cls) -> GuardDefaults:
        defaults, _created = cls.objects.get_or_create(pk=1)
        return defaults


class Erasure(models.Model):
    """Someone erased a person: who, when, by which key, and what went (the address is never
    kept in clear: ``address_hash`` is an HMAC-SHA256 under ``ERASURE_HASH_KEY``, so a later
    request about the same address can be matched to the record).

    Moved here from the API app with its table (``api_erasure``): exports own the forgetting.
    """

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
        db_table = "api_erasure"
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"erasure {self.pk}"


class ErasureExport(models.Model):
    """One export that delivered the erased address, and how forgetting it there went.

    The address is kept encrypted (``core.crypto``) only until the export confirmed.
    Pending until confirmed; failed (with the reason in ``last_error``) when the last attempt
    was refused or ran out of retries, which the export's next run or another propagation may
    still turn into confirmed.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        CONFIRMED = "confirmed", _("Confirmed")
        FAILED = "failed", _("Failed")

    erasure = models.ForeignKey(Erasure, on_delete=models.CASCADE, related_name="exports")
    export = models.ForeignKey(Export, null=True, on_delete=models.SET_NULL, related_name="+")
    export_name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    #: The address, encrypted; emptied once the export confirmed.
    encrypted_address = models.TextField(blank=True, default="")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    #: The run that removed the address, or null when the erasure's own task did.
    confirmed_by_run = models.ForeignKey(
        ExportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Why the last attempt failed (stored, shown in the reader's language).
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "api_erasureexport"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.erasure_id}:{self.export_name}"
