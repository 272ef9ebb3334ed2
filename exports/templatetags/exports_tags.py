"""Small filters for the exports and system pages."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

from exports import selectors
from exports.models import EMAIL, FIRST_NAME, LAST_NAME, ExportRun, FieldMapping
from exports.recipients import ADD, RETURN, UPDATE

register = template.Library()


@register.filter
def failure_label(code: str) -> str:
    """A failure's code in words when it is one of our own skips."""
    return selectors.failure_label(code)


@register.filter
def failure_reason(failure) -> str:
    """A failure's reason, in the reader's language when it is one of our own skips."""
    return selectors.failure_reason(failure.code, failure.reason, failure.skipped)


@register.filter
def sample_heading(action: str) -> str:
    """The heading of the preview's sample of the recipients with ``action``: the additions
    (returns included), the updates or the removals (``exports.services.export_preview``)."""
    if action == ADD:
        return _("Sample of additions")
    if action == UPDATE:
        return _("Sample of updates")
    return _("Sample of removals")


@register.filter
def destination_label(row: FieldMapping) -> str:
    """A mapping row's destination field, its built-in ones in the reader's language."""
    builtin = {
        EMAIL: _("Email"),
        FIRST_NAME: _("First name"),
        LAST_NAME: _("Last name"),
    }
    return builtin.get(row.destination_key) or row.destination_name or row.destination_key


@register.filter
def action_label(action: str) -> str:
    """What a run does with one person (a recipients table's action), in words."""
    return {
        ADD: _("Added"),
        RETURN: _("Added again"),
        UPDATE: _("Updated"),
    }.get(action, _("Removed"))


@register.filter
def started_by(run: ExportRun) -> str:
    """ "Schedule", or the name of the user who selected Run or Retry failed records (a retry
    says so beside it: ``exports/_retry_of.html``)."""
    if run.trigger == ExportRun.Trigger.SCHEDULE:
        return _("Schedule")
    if run.triggered_by is None:
        return _("A removed user")
    return run.triggered_by.get_full_name() or run.triggered_by.get_username()


@register.filter
def duration(seconds: float | int | None) -> str:
    """Seconds as "1 h 5 min", "4 min 10 s" or "12 s"."""
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    if minutes:
        return _("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": secs}
    return _("%(seconds)d s") % {"seconds": secs}


@register.simple_tag
def refresh_schedule() -> selectors.RefreshState:
    """Whether anything runs on schedule and when next: ``{% refresh_schedule as refresh %}``."""
    return selectors.refresh_state()
