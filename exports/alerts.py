"""E-mail alerts about exports that need someone's attention.

Three things raise an alert: a run that failed, a run whose records the service refused in
numbers (at least ``EXPORT_ALERT_MIN_FAILED`` and at least ``EXPORT_ALERT_FAILED_SHARE`` of what
it was sent; the profiles we skipped ourselves do not count), and a connection that needs
re-authentication. The mail goes to the export's creator and to every active administrator
with an e-mail address, as one message.

How often:

- At most one alert per export per calendar day (in ``TIME_ZONE``). Calendar days rather than
  a rolling 24 hours, so that an export scheduled daily at the same time is not silenced on
  the second day by a mail sent a few seconds later the day before.
- The one exception is the notice that the schedule paused itself (``exports.services``
  pauses it after ``PAUSE_AFTER_FAILURES`` failed scheduled runs in a row): it is sent even
  when the export had an alert that day, because someone has to turn the schedule on again by
  hand. It can only come again after that, so an export gets two mails a day at the very most.
- One re-authentication alert per connection per day, listing every export that uses the
  connection (one mail rather than one per export; those exports' own failures are still
  alerted about separately, under the per-export limit).

Each alert sent is an ``Alert`` row, which is also what the limits are checked against. A mail
that could not be sent is logged and its row removed, so that the next occasion tries again.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.selectors import alert_addresses
from config.translation import shown
from connections.models import Connection
from exports.models import Alert, Export, ExportRun

logger = logging.getLogger(__name__)
Status = ExportRun.Status


def run_finished(run_id: int, *, schedule_paused: bool = False) -> None:
    """Call once a run has ended (``services.run_after_finish`` does), saying whether the run
    paused the export's schedule; sends the alert the run calls for, if any.

    A mail that cannot be sent is logged, not raised.
    """
    run = ExportRun.objects.select_related("export__created_by").get(pk=run_id)
    export = run.export
    with translation.override(settings.LANGUAGE_CODE):
        if schedule_paused:
            kind = Alert.Kind.SCHEDULE_PAUSED
        elif run.status == Status.FAILED:
            kind = Alert.Kind.RUN_FAILED
        elif run.status == Status.COMPLETED_WITH_WARNINGS and refused_too_many(run):
            kind = Alert.Kind.RUN_REFUSED
        else:
            return
        _send(
            kind=kind,
            export=export,
            recipients=alert_addresses([export.created_by]),
            subject=_run_subject(kind, run),
            body=_run_body(kind, run),
        )


def run_awaiting_approval(run_id: int) -> None:
    """Call once the pre-flight guard held a run (``services.run_after_hold`` queues it): tell
    the export's owner (its creator; the administrators when it has none who can be mailed)
    that the run waits, with the numbers and the link. Not limited to one a day: the export
    sends nothing until someone decides.

    A mail that cannot be sent is logged, not raised.
    """
    run = ExportRun.objects.select_related("export__created_by").get(pk=run_id)
    if run.status != Status.AWAITING_APPROVAL:
        return
    owner = run.export.created_by
    if owner is not None and owner.is_active and owner.email:
        to_owner, recipients = True, [owner.email.strip()]
    else:
        to_owner, recipients = False, alert_addresses([])
    with translation.override(settings.LANGUAGE_CODE):
        _send(
            kind=Alert.Kind.RUN_AWAITING_APPROVAL,
            export=run.export,
            recipients=recipients,
            subject=_("Export “%(name)s” waits for your approval")
            % {"name": run.export.display_name},
            body=_awaiting_body(run, to_owner=to_owner),
        )


def connection_needs_reauthentication(connection_id: int) -> None:
    """Call when a connection has just moved to "needs re-authentication": one mail, at most
    once a day per connection, naming every export that uses it.

    A mail that cannot be sent is logged, not raised.
    """
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return
    exports = list(
        Export.objects.filter(connection=connection)
        .select_related("created_by")
        .order_by("display_name", "id")
    )
    with translation.override(settings.LANGUAGE_CODE):
        _send(
            kind=Alert.Kind.NEEDS_REAUTHENTICATION,
            connection=connection,
            recipients=alert_addresses(
                [*(export.created_by for export in exports), *connection.export_users.all()]
            ),
            subject=_("Connection “%(name)s” needs re-authentication")
            % {"name": connection.display_name},
            body=_reauthentication_body(connection, exports),
        )


def refused_too_many(run: ExportRun) -> bool:
    """Whether the service refused enough of the run's records to tell someone.

    Counts only records the service refused (``run.failed``), never the ones we skipped. The
    share is taken of everything the run asked the service to do (sends and removals).
    """
    asked = run.to_send + run.to_remove
    return (
        run.failed > 0
        and run.failed >= settings.EXPORT_ALERT_MIN_FAILED
        and run.failed >= settings.EXPORT_ALERT_FAILED_SHARE * asked
    )


# Sending -----------------------------------------------------------------------------------------


def _send(
    *,
    kind: str,
    recipients: list[str],
    subject: str,
    body: str,
    export: Export | None = None,
    connection: Connection | None = None,
) -> bool:
    """Send the mail unless the export (or connection) had its alert today; record it."""
    if not recipients:
        logger.info("No one with an e-mail address to send the %s alert to", kind)
        return False
    target: models.Model = export if export is not None else connection  # type: ignore[assignment]
    scope = {"export": export} if export is not None else {"connection": connection}
    with transaction.atomic():
        # The row lock makes two workers that finish at once check and record in turn.
        type(target)._default_manager.select_for_update().filter(pk=target.pk).values_list(
            "pk", flat=True
        ).first()
        # A notice that a run awaits approval is not an alert of the day: it never holds back
        # one about a failure.
        sent_today = Alert.objects.filter(**scope, sent_at__gte=_start_of_today()).exclude(
            kind=Alert.Kind.RUN_AWAITING_APPROVAL
        )
        once_a_day = kind not in (Alert.Kind.SCHEDULE_PAUSED, Alert.Kind.RUN_AWAITING_APPROVAL)
        if once_a_day and sent_today.exists():
            logger.info("Alert %s about %r not sent: one was sent today", kind, target)
            return False
        alert = Alert.objects.create(kind=kind, recipients=recipients, **scope)
    try:
        EmailMessage(subject=subject, body=body, to=recipients).send()
    except Exception:
        logger.exception("Could not send the %s alert about %r", kind, target)
        alert.delete()
        return False
    return True


def _start_of_today() -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time.min))


# Wording -----------------------------------------------------------------------------------------


def _run_subject(kind: str, run: ExportRun) -> str:
    name = run.export.display_name
    if kind == Alert.Kind.SCHEDULE_PAUSED:
        return _("Export “%(name)s” failed and its schedule is paused") % {"name": name}
    if kind == Alert.Kind.RUN_FAILED:
        return _("Export “%(name)s” failed") % {"name": name}
    return ngettext(
        "Export “%(name)s”: the service refused %(count)s profile",
        "Export “%(name)s”: the service refused %(count)s profiles",
        run.failed,
    ) % {"name": name, "count": f"{run.failed:,}"}


def _run_body(kind: str, run: ExportRun) -> str:
    export = run.export
    names = {
        "name": export.display_name,
        "list": export.list_name or export.list_id,
        "when": _when(run.finished_at),
    }
    paragraphs = [_("Hello,")]
    if kind == Alert.Kind.RUN_REFUSED:
        asked = run.to_send + run.to_remove
        paragraphs.append(
            ngettext(
                "The export “%(name)s” to the list “%(list)s” finished on %(when)s, but the "
                "service refused %(count)s profile of %(asked)s (%(share)s).",
                "The export “%(name)s” to the list “%(list)s” finished on %(when)s, but the "
                "service refused %(count)s profiles of %(asked)s (%(share)s).",
                run.failed,
            )
            % {
                **names,
                "count": f"{run.failed:,}",
                "asked": f"{asked:,}",
                "share": f"{run.failed / max(asked, 1):.0%}",
            }
        )
        paragraphs.append(
            _("The run's page on the export lists each refused profile with the service's reason.")
        )
    else:
        paragraphs.append(
            _("The export “%(name)s” to the list “%(list)s” failed on %(when)s.") % names
        )
        if run.last_error:
            paragraphs.append(_("What went wrong: %(error)s") % {"error": shown(run.last_error)})
    if kind == Alert.Kind.SCHEDULE_PAUSED:
        paragraphs.append(export.schedule_paused_reason)
        paragraphs.append(
            _(
                "The export no longer runs on schedule. Once the cause is fixed, switch on "
                "“Run on schedule” on the export page to start it again."
            )
        )
    paragraphs.append(_("Open the export: %(url)s") % {"url": _absolute(export.get_absolute_url())})
    paragraphs.append(
        _(
            "You receive this e-mail because you created this export or are an administrator "
            "of Audience Relay. At most one such e-mail is sent per export per day."
        )
    )
    return "\n\n".join(paragraphs) + "\n"


def _awaiting_body(run: ExportRun, *, to_owner: bool) -> str:
    from exports.guard import shown_reasons

    export = run.export
    names = {"name": export.display_name, "list": export.list_name or export.list_id}
    paragraphs = [
        _("Hello,"),
        _(
            "A run of the export “%(name)s” to the list “%(list)s” stopped before sending "
            "anything, because what it would do looks like more than usual:"
        )
        % names,
        "\n".join(f"- {reason}" for reason in shown_reasons(run.held_because)),
        "\n".join(
            [
                _("Addresses in the list now: %(count)s") % {"count": f"{run.list_size or 0:,}"},
                _("To add: %(count)s") % {"count": f"{run.to_add:,}"},
                _("To remove: %(count)s") % {"count": f"{run.to_remove:,}"},
                _("In the list after the run: %(count)s")
                % {"count": f"{run.list_size_after or 0:,}"},
            ]
        ),
        _(
            "Nothing is sent until someone approves the run. Approve sends exactly what it "
            "computed; Discard sends nothing. Until then the export does not run again, on "
            "schedule or by hand."
        ),
        _("Open the run: %(url)s")
        % {"url": _absolute(reverse("exports:run_detail", args=[run.pk]))},
        _("You receive this e-mail because you created this export.")
        if to_owner
        else _(
            "You receive this e-mail because you are an administrator of Audience Relay and "
            "the export's creator cannot be reached by e-mail."
        ),
    ]
    return "\n\n".join(paragraphs) + "\n"


def _reauthentication_body(connection: Connection, exports: list[Export]) -> str:
    names = {"name": connection.display_name, "service": connection.kind_label}
    # The connection's error says what the service refused and what to do about it: said once,
    # not again in words of our own.
    what_happened = (
        shown(connection.last_error)
        or _(
            "%(service)s no longer accepts the credentials of the connection “%(name)s”: an "
            "administrator must edit the connection and authenticate again."
        )
        % names
    )
    paragraphs = [
        _("Hello,"),
        what_happened,
        _("Until then, the exports that use the connection “%(name)s” cannot run.") % names,
    ]
    paragraphs.append(
        _("Authenticate again: %(url)s")
        % {"url": _absolute(reverse("connections:edit", args=[connection.pk]))}
    )
    if exports:
        heading = ngettext(
            "The export that uses this connection:",
            "The %(count)s exports that use this connection:",
            len(exports),
        ) % {"count": len(exports)}
        lines = [
            f"- {export.display_name}: {_absolute(export.get_absolute_url())}" for export in exports
        ]
        paragraphs.append("\n".join([heading, *lines]))
    paragraphs.append(
        _(
            "You receive this e-mail because you created one of these exports or are an "
            "administrator of Audience Relay. At most one such e-mail is sent per connection "
            "per day."
        )
    )
    return "\n\n".join(paragraphs) + "\n"


def _when(moment: dt.datetime | None) -> str:
    moment = timezone.localtime(moment or timezone.now())
    return f"{date_format(moment, 'DATETIME_FORMAT')} ({settings.TIME_ZONE})"


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path
