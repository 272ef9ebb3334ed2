"""Writes on exports and their runs. Views, tasks and commands call these."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

import audit
from audit.actions import AuditAction
from config.translation import LaterText, shown
from connections import services as connection_services
from connections import signals as connection_signals
from connections.models import Connection
from connections.types.base import BackendError, FieldType
from exports import runs, signals, tasks
from exports.mapping import MappingRow, replace_rows, rows_of, send_plan
from exports.mapping import summary as mapping_summary
from exports.models import Export, ExportRun, ExportRunFailure, GuardDefaults
from exports.selectors import (
    RunAllExport,
    bills_by_contacts,
    export_settings,
    exports_to_run_all,
    exports_using,
    run_awaiting_approval,
)

logger = logging.getLogger(__name__)


class ExportAlreadyRunning(Exception):
    """The export has a queued or running run already, or one awaiting approval."""


class RunNotAwaitingApproval(Exception):
    """Approve or Discard on a run that does not await approval (any more)."""


def run_request(*, export: Export, user=None, retry_of: ExportRun | None = None) -> ExportRun:
    """Queue a run of the export (by a user, or by the schedule when ``user`` is None); with
    ``retry_of``, a run that sends again only the records the service refused in that run.

    The database refuses a second active run of one export; that refusal becomes
    ExportAlreadyRunning.
    """
    trigger = ExportRun.Trigger.USER if user else ExportRun.Trigger.SCHEDULE
    try:
        with transaction.atomic():
            run = ExportRun.objects.create(
                export=export, trigger=trigger, triggered_by=user, retry_of=retry_of
            )
    except IntegrityError:
        raise ExportAlreadyRunning(_already_running(export)) from None
    started = {"run": run.pk, "trigger": trigger, "retry_of": retry_of and retry_of.pk}
    audit.record(
        AuditAction.RUN_STARTED, export, after=started, actor=user, actor_label=audit.SCHEDULE
    )
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _already_running(export: Export) -> str:
    waiting = run_awaiting_approval(export)
    if waiting is not None:
        return _(
            "“%(name)s” is waiting for approval of run #%(run)s. Approve or discard that run first."
        ) % {"name": export.display_name, "run": waiting.pk}
    return _("“%(name)s” is already running. Wait for it to finish or cancel it.") % {
        "name": export.display_name
    }


def run_skip(*, export: Export, reason: LaterText | str) -> ExportRun | None:
    """Record a scheduled run that was skipped (e.g. its segment failed to refresh, or a run
    of the export awaits approval)."""
    try:
        with transaction.atomic():
            return runs.record_skipped(export, reason)
    except IntegrityError:
        return None


def run_cancel(*, run: ExportRun) -> None:
    """Stop a run: a queued one at once, a running one at its next batch boundary."""
    runs.request_cancel(run)
    audit.record(AuditAction.RUN_CANCELLED, run.export, after={"run": run.pk})


def run_approve(*, run: ExportRun, user) -> ExportRun:
    """**Approve** a run that awaits approval: it is queued again and carries on from where it
    stopped, sending exactly the recipients it computed (not computed again, not held again).
    Raises ``RunNotAwaitingApproval`` when it no longer awaits approval."""
    _decide(run, user, ExportRun.Status.QUEUED, AuditAction.RUN_APPROVED, "approved", approved=True)
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def run_discard(*, run: ExportRun, user) -> ExportRun:
    """**Discard** a run that awaits approval: it ends as Discarded and sends nothing; the list
    and the export's sync state stay as they are. Raises ``RunNotAwaitingApproval`` when it no
    longer awaits approval. Once committed it is announced (``signals.export_run_discarded``).
    """
    from exports.recipients import RecipientTable

    _decide(run, user, ExportRun.Status.DISCARDED, AuditAction.RUN_DISCARDED, "discarded")
    RecipientTable(run).drop()
    # Its end settles what waited for it (an erasure left to the run's end).
    transaction.on_commit(lambda: run_after_finish(run.pk))
    transaction.on_commit(
        lambda: signals.export_run_discarded.send_robust(sender=ExportRun, run_id=run.pk)
    )
    return run


def _decide(
    run: ExportRun, user, status: str, action: AuditAction, decision: str, **changes: Any
) -> None:
    """Move a run that awaits approval to ``status`` as ``user`` decided, and audit it with
    the numbers it was held on."""
    held = _held_numbers(run)
    try:
        runs.transition(run, status, decided_by=user, decided_at=timezone.now(), **changes)
    except runs.IllegalTransition:
        raise RunNotAwaitingApproval(_not_awaiting(run)) from None
    audit.record(action, run.export, before=None, after={**held, "decision": decision}, actor=user)


def _held_numbers(run: ExportRun) -> dict[str, Any]:
    return {
        "run": run.pk,
        "list_size": run.list_size,
        "adds": run.to_add,
        "removals": run.to_remove,
        "list_size_after": run.list_size_after,
    }


def _not_awaiting(run: ExportRun) -> str:
    run.refresh_from_db(fields=["status"])
    return _("Run #%(run)s does not await approval: it is %(status)s.") % {
        "run": run.pk,
        "status": run.get_status_display().lower(),
    }


def run_after_hold(run_id: int) -> None:
    """Call once the guard held a run (the engine does): record it, tell the export's owner by
    e-mail (``exports.alerts``) and announce it (``signals.export_run_awaiting_approval``)."""
    run = ExportRun.objects.select_related("export").get(pk=run_id)
    audit.record(
        AuditAction.RUN_HELD,
        run.export,
        before=None,
        after={**_held_numbers(run), "reasons": run.held_because.splitlines()},
        actor=None,
    )
    alert_after_commit(tasks.alert_run_awaiting_approval, run.pk)
    signals.export_run_awaiting_approval.send_robust(sender=ExportRun, run_id=run.pk)


def runs_resume_stalled() -> int:
    """Queue again every run whose worker went silent (killed, out of memory, machine lost).

    The engine's claim decides who runs it, so queueing one twice is harmless.
    """
    stale = timezone.now() - timedelta(seconds=settings.EXPORT_STALLED_AFTER_SECONDS)
    stalled = ExportRun.objects.filter(
        Q(status=ExportRun.Status.RUNNING, heartbeat_at__lt=stale)
        | Q(status=ExportRun.Status.QUEUED, created_at__lt=stale)
    ).values_list("pk", flat=True)
    count = 0
    for run_id in stalled:
        logger.warning("Export run %s stalled; queueing it again to resume", run_id)
        _enqueue(run_id)
        count += 1
    _drop_orphaned_recipient_tables()
    return count


def _drop_orphaned_recipient_tables() -> None:
    """A run normally drops its recipient table when it ends; this catches the rare run whose
    ending was lost with its worker."""
    from exports.recipients import drop_orphaned_tables

    # A run awaiting approval keeps its tables: Approve sends what they hold.
    active = ExportRun.objects.filter(status__in=ExportRun.HOLDING_STATUSES)
    for name in drop_orphaned_tables(active.values_list("pk", flat=True)):
        logger.info("Dropped the recipient table %s of a run that ended", name)


def _enqueue(run_id: int) -> None:
    try:
        tasks.run_export.delay(run_id)
    except Exception:  # the broker is down: the sweeper queues the run again later
        logger.exception("Could not queue export run %s; the sweeper will retry", run_id)


# Export definitions: what the Data > Exports pages change ---------------------------------------


class ExportNotRunnable(Exception):
    """The export cannot run as it stands (it has no connection)."""


class FieldNotCreated(Exception):
    """A mapping row's new destination field could not be created; the message says why."""


def export_save(
    *,
    export: Export | None,
    user,
    new_list_name: str = "",
    mapping: Sequence[MappingRow] | None = None,
    **values: Any,
) -> Export:
    """Create (``export=None``) or change an export. ``values`` are every one of
    ``Export.SETTINGS_FIELDS`` by name (``segments`` as the segments). Saving never runs it.

    With ``new_list_name``, the export's list is the account's list of that name, created
    first when there is none (raises ``BackendError`` with the service's reason).
    ``mapping`` (checked by the form) replaces the export's rows; its rows marked ``create``
    are created at the service first (raises ``FieldNotCreated`` with the reason). None keeps
    the rows (a new export maps the e-mail).
    """
    if set(values) != set(Export.SETTINGS_FIELDS):
        raise TypeError(
            "export_save takes Export.SETTINGS_FIELDS, no more and no less: "
            f"missing {sorted(set(Export.SETTINGS_FIELDS) - set(values))}, "
            f"unknown {sorted(set(values) - set(Export.SETTINGS_FIELDS))}"
        )
    if new_list_name:  # before the transaction: no database lock waits for the service
        backend = connection_services.backend_for(values["connection"])
        created = backend.create_destination(new_list_name)
        values["list_id"], values["list_name"] = created.id, created.name
    if mapping is not None and any(row.create for row in mapping):
        mapping = _create_fields(values["connection"], values["list_id"], mapping)
    with transaction.atomic():
        before = _snapshot(export) if export is not None else None
        saved = _apply_settings(export if export is not None else Export(created_by=user), values)
        if mapping is not None:
            replace_rows(saved, mapping)
        audit.record(
            AuditAction.EXPORT_UPDATED if before else AuditAction.EXPORT_CREATED,
            saved,
            before=before,
            after=_snapshot(saved),
        )
        return saved


def _snapshot(export: Export) -> dict[str, Any]:
    """The export's settings for the audit log, with its field mapping."""
    return {**audit.snapshot(export), "mapping": mapping_summary(export)}


def _create_fields(connection, list_id: str, rows: Sequence[MappingRow]) -> list[MappingRow]:
    """Create the rows' new destination fields (before the transaction: no database lock
    waits for the service); the rows then carry the keys the service gave them."""
    backend = connection_services.backend_for(connection)
    made = []
    for row in rows:
        if not row.create:
            made.append(row)
            continue
        try:
            field = backend.create_field(
                list_id, row.destination_name, FieldType(row.destination_type)
            )
        except BackendError as error:
            raise FieldNotCreated(
                _("%(service)s did not create the field “%(name)s”: %(reason)s")
                % {
                    "service": connection.kind_label,
                    "name": row.destination_name,
                    "reason": error.message,
                }
            ) from None
        made.append(
            replace(
                row,
                destination_key=field.key,
                destination_name=field.name,
                destination_type=field.type,
                create=False,
            )
        )
    return made


@transaction.atomic
def export_duplicate(*, export: Export, user) -> Export:
    """A copy with the same settings and segments; its schedule is off until someone turns it
    on, so that the copy does not send the same profiles again on the next refresh."""
    values = export_settings(export)
    name = _("Copy of %(name)s") % {"name": export.display_name}
    values["display_name"] = name[: Export._meta.get_field("display_name").max_length]
    values["schedule_enabled"] = False
    copy = _apply_settings(Export(created_by=user), values)
    replace_rows(copy, rows_of(export))
    audit.record(
        AuditAction.EXPORT_DUPLICATED,
        copy,
        before={"copied_from": export.pk},
        after=_snapshot(copy),
    )
    return copy


def _apply_settings(export: Export, values: dict[str, Any]) -> Export:
    """Set ``Export.SETTINGS_FIELDS`` on the export and save it, many-to-many ones after."""
    relations = {}
    for name, value in values.items():
        if Export._meta.get_field(name).many_to_many:
            relations[name] = value
        else:
            setattr(export, name, value)
    export.save()
    for name, value in relations.items():
        getattr(export, name).set(value)
    return export


def export_set_schedule(*, export: Export, enabled: bool) -> Export:
    """Turn the schedule on or off; turning it on forgets why it paused itself, if it did."""
    before = audit.snapshot(export)
    export.schedule_enabled = enabled
    fields = ["schedule_enabled", "updated_at"]
    if enabled:
        export.schedule_paused_reason = ""
        fields.append("schedule_paused_reason")
    export.save(update_fields=fields)
    audit.record(AuditAction.EXPORT_SCHEDULE_CHANGED, export, before=before)
    return export


# When a run ends: the schedule pauses itself after failed scheduled runs ----------------------

#: Failed scheduled runs in a row after which the export's schedule pauses itself.
PAUSE_AFTER_FAILURES = 3


def run_after_finish(run_id: int) -> None:
    """Call once a run has ended (the engine does): pause the export's schedule when it keeps
    failing, then queue the alert the run calls for (``exports.alerts``), if any, and announce
    the end (``exports.signals.export_run_finished``)."""
    run = ExportRun.objects.select_related("export").get(pk=run_id)
    paused = export_pause_schedule_if_failing(run)
    alert_after_commit(tasks.alert_run_finished, run.pk, schedule_paused=paused)
    signals.export_run_finished.send_robust(sender=ExportRun, run_id=run.pk)


def alert_after_commit(task, *args, **kwargs) -> None:
    """Queue an alert's task once what it reports is committed: the mail goes from a worker
    of its own, never from the thread that noticed (a batch's pool thread, a page)."""

    def queue() -> None:
        try:
            task.delay(*args, **kwargs)
        except Exception:  # the broker is down, or (eager) the alert broke: never the caller's
            logger.exception("The alert %s could not be sent", task.name)

    transaction.on_commit(queue)


def export_pause_schedule_if_failing(run: ExportRun) -> bool:
    """Turn the schedule off when this run is the last of ``PAUSE_AFTER_FAILURES`` failed
    scheduled runs in a row; return whether it did.

    Runs started by a user that failed neither count nor break the streak (someone is already
    looking); any run that delivered (successful or with warnings) breaks it. Skipped and
    cancelled runs are left out: they say nothing about whether the export works.
    """
    Status = ExportRun.Status
    if run.status != Status.FAILED or run.trigger != ExportRun.Trigger.SCHEDULE:
        return False
    latest = list(
        ExportRun.objects.filter(export_id=run.export_id, pk__lte=run.pk)
        .filter(
            Q(status__in=ExportRun.DELIVERED_STATUSES)
            | Q(status=Status.FAILED, trigger=ExportRun.Trigger.SCHEDULE)
        )
        .order_by("-pk")
        .values_list("status", flat=True)[:PAUSE_AFTER_FAILURES]
    )
    if len(latest) < PAUSE_AFTER_FAILURES or any(status != Status.FAILED for status in latest):
        return False
    with translation.override(settings.LANGUAGE_CODE):  # the same language as the alert's
        reason = _paused_reason(run)
    paused = Export.objects.filter(pk=run.export_id, schedule_enabled=True).update(
        schedule_enabled=False, schedule_paused_reason=reason, updated_at=timezone.now()
    )
    if not paused:  # already off: nothing to pause, nothing to announce
        return False
    logger.warning("Export %s: schedule paused after failed scheduled runs", run.export_id)
    before = audit.snapshot(run.export)
    run.export.schedule_enabled = False
    run.export.schedule_paused_reason = reason
    audit.record(AuditAction.EXPORT_SCHEDULE_PAUSED, run.export, before=before, actor=None)
    return True


def _paused_reason(run: ExportRun) -> str:
    finished_at = timezone.localtime(run.finished_at or timezone.now())
    when = f"{date_format(finished_at, 'DATETIME_FORMAT')} ({settings.TIME_ZONE})"
    reason = ngettext(
        "Paused on %(date)s because the last scheduled run failed.",
        "Paused on %(date)s because the last %(count)s scheduled runs failed in a row.",
        PAUSE_AFTER_FAILURES,
    ) % {"date": when, "count": PAUSE_AFTER_FAILURES}
    if run.last_error:
        reason += " " + _("The last one said: %(error)s") % {"error": shown(run.last_error)}
    return reason


@transaction.atomic
def export_detach(*, export: Export) -> Export:
    """Take the export off its connection; it keeps its settings and cannot run until another
    connection is chosen. A run in progress is cancelled."""
    before = audit.snapshot(export)
    export.connection = None
    export.save(update_fields=["connection", "updated_at"])
    audit.record(AuditAction.EXPORT_DETACHED, export, before=before)
    export_cancel(export=export)
    return export


@transaction.atomic
def export_delete(*, export: Export) -> None:
    """Remove the export with its run history."""
    audit.record(AuditAction.EXPORT_DELETED, export, before=audit.snapshot(export), after=None)
    export.delete()


def export_run_now(*, export: Export, user) -> ExportRun:
    """**Run**: queue a run by this user. Refuses an export without a connection, and one that
    is already running (``ExportAlreadyRunning``)."""
    if export.connection_id is None:
        raise ExportNotRunnable(
            _("“%(name)s” has no connection. Edit it and choose a connection, then run it.")
            % {"name": export.display_name}
        )
    return run_request(export=export, user=user)


def export_cancel(*, export: Export, user=None) -> ExportRun | None:
    """**Cancel job**: stop the export's active run, if it has one; returns that run. A run
    awaiting approval is discarded."""
    active = export.runs.filter(status__in=ExportRun.HOLDING_STATUSES).first()
    if active is not None and active.status == ExportRun.Status.AWAITING_APPROVAL:
        run_discard(run=active, user=user)
    elif active is not None:
        run_cancel(run=active)
    return active


class RunAll(NamedTuple):
    """What **Run all** did: the exports it queued, those already running, and those it left
    because a run of theirs awaits approval (with that run)."""

    queued: list[Export]
    already_running: list[Export]
    awaiting_approval: list[RunAllExport]


def exports_run_all(*, user) -> RunAll:
    """**Run all**: queue every export with a schedule that has a connection this user may use,
    except those whose run awaits approval (that run must be approved or discarded first)."""
    done = RunAll([], [], [])
    for item in exports_to_run_all(user):
        if item.waiting_run_id is not None:
            done.awaiting_approval.append(item)
            continue
        try:
            run_request(export=item.export, user=user)
        except ExportAlreadyRunning:
            # Held by the guard since it was read, or simply running.
            waiting = run_awaiting_approval(item.export)
            if waiting is not None:
                done.awaiting_approval.append(RunAllExport(item.export, waiting.pk))
            else:
                done.already_running.append(item.export)
        else:
            done.queued.append(item.export)
    return done


def exports_release_connection(*, connection: Connection, action: str) -> None:
    """Before a connection is removed (inside that transaction): detach
    (``connections.signals.DETACH``) or remove (``REMOVE``) the exports that use it, as the user
    chose (C6). With any other action nothing changes, and the connection's removal is refused
    because its exports still use it."""
    exports = list(exports_using(connection).select_for_update())
    if action == connection_signals.DETACH:
        for export in exports:
            export_detach(export=export)
    elif action == connection_signals.REMOVE:
        for export in exports:
            export_delete(export=export)


def export_request_resend(*, export: Export) -> None:
    """**Resend everything**: the next run sends every member, changed or not."""
    Export.objects.filter(pk=export.pk).update(resend_next_run=True)
    export.resend_next_run = True


def run_retry_failed(*, run: ExportRun, user) -> ExportRun:
    """**Retry failed records**: a run that sends only what the service refused in ``run``."""
    if not run.export.connection_id:
        raise ExportNotRunnable(
            _("“%(name)s” has no connection. Edit it and choose a connection, then run it.")
            % {"name": run.export.display_name}
        )
    return run_request(export=run.export, user=user, retry_of=run)


class _PreviewDone(Exception):
    pass


def export_preview(*, export: Export, sample_size: int = 10) -> dict:
    """**Preview** (dry run): what the next run would add, update, remove, skip and exclude,
    with samples, and the first of them as the service will receive them (``Backend.preview``).

    The next run's recipients are computed exactly as the run will, inside a transaction that
    is then rolled back; nothing is sent and nothing is kept. The service is asked only for the
    list's fields, to convert the samples as the run will.
    """
    from exports.recipients import (
        ADD,
        EXCLUDED_REASONS,
        REMOVE,
        RETURN,
        UPDATE,
        RecipientTable,
        build_recipients,
    )

    preview: dict = {}
    try:
        with transaction.atomic():
            run = ExportRun.objects.create(
                export=export, trigger=ExportRun.Trigger.USER, status=ExportRun.Status.SKIPPED
            )
            counts = build_recipients(run)
            table = RecipientTable(run)
            listed = ExportRunFailure.objects.filter(run=run, skipped=True)
            skipped = listed.exclude(code__in=EXCLUDED_REASONS)
            preview = {
                "members": counts.members,
                "added": counts.added,
                "updated": counts.updated,
                "removed": counts.to_remove,
                "unchanged": counts.unchanged,
                "skipped": counts.skipped,
                "excluded": counts.excluded,
                "excluded_by_reason": list(
                    listed.filter(code__in=EXCLUDED_REASONS)
                    .values("code")
                    .annotate(count=Count("id"))
                    .order_by("-count")
                ),
                "skipped_by_reason": list(
                    skipped.values("code").annotate(count=Count("id")).order_by("-count")
                ),
                "samples": {
                    ADD: table.sample((ADD, RETURN), sample_size),
                    UPDATE: table.sample((UPDATE,), sample_size),
                    REMOVE: table.sample((REMOVE,), sample_size),
                },
                "skipped_samples": list(
                    skipped.values("customer_id", "email", "code")[:sample_size]
                ),
            }
            raise _PreviewDone
    except _PreviewDone:
        pass
    preview.update(_cost(export, adds=preview["added"], removals=preview["removed"]))
    sent = [*preview["samples"][ADD], *preview["samples"][UPDATE]]
    preview.update(_payloads(export, sent, preview["samples"][REMOVE], returning=RETURN))
    return preview


def _cost(export: Export, *, adds: int, removals: int) -> dict:
    """What the next run does to the destination list's size, and whether the pre-flight
    guard would stop it for approval (``exports.guard``)."""
    from exports import guard

    verdict = guard.judge(
        list_size=guard.list_size(export.pk),
        adds=adds,
        removals=removals,
        thresholds=guard.thresholds_for(export),
    )
    return {
        "list_size": verdict.list_size,
        "list_size_after": verdict.size_after,
        "bills_by_contacts": bills_by_contacts(export),
        "would_hold": [str(reason) for reason in verdict.reasons],
    }


#: How many sample people Preview shows as the service will receive them.
PAYLOAD_SAMPLES = 5


def _payloads(export: Export, sent: list[dict], removed: list[dict], *, returning: str) -> dict:
    """The first sample people as the service will receive them, or why that cannot be shown."""
    if export.connection is None or not (sent or removed):
        return {"payloads": [], "payload_error": ""}
    plan = send_plan(export)
    backend = connection_services.backend_for(export.connection)
    try:
        backend.prepare(export.list_id, plan.destination_fields(export), plan.options)
        payloads = [
            {
                "email": row["email"],
                "action": row["action"],
                "fields": backend.preview(
                    plan.record(
                        row["email"],
                        row["first_name"],
                        row["last_name"],
                        row["extras"],
                        row["action"] == returning,
                    )
                ),
            }
            for row in sent[:PAYLOAD_SAMPLES]
        ]
        if plan.untag_leavers and backend.supports_tags:
            payloads += [
                {
                    "email": row["email"],
                    "action": row["action"],
                    "fields": backend.preview(plan.leaver(row["email"], row["extras"])),
                }
                for row in removed[:PAYLOAD_SAMPLES]
            ]
    except BackendError as error:
        return {"payloads": [], "payload_error": str(error.message)}
    except NotImplementedError:
        return {"payloads": [], "payload_error": ""}
    return {"payloads": payloads, "payload_error": ""}


# Admin > System > Safety ------------------------------------------------------------------------


@transaction.atomic
def guard_defaults_save(
    *, max_removal_percent: int, max_removals: int, max_add_factor: int, user
) -> GuardDefaults:
    """Change the pre-flight guard's defaults (every export without its own thresholds)."""
    defaults = GuardDefaults.load()
    before = audit.snapshot(defaults)
    defaults.max_removal_percent = max_removal_percent
    defaults.max_removals = max_removals
    defaults.max_add_factor = max_add_factor
    defaults.updated_by = user
    defaults.save()
    audit.record(AuditAction.GUARD_DEFAULTS_UPDATED, defaults, before=before, actor=user)
    return defaults
