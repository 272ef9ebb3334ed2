"""What a run tells a marketer when it stops early: plain words, what to do next, no secrets."""

from __future__ import annotations

from config.translation import LaterText, from_stored
from config.translation import gettext_later as _
from connections.types.base import (
    AuthRevoked,
    Backend,
    BackendError,
    ListNotFound,
    Permanent,
    Transient,
)
from segments.models import Segment

NO_CONNECTION = _(
    "The export has no connection. Edit the export, choose a connection and run it again."
)
NO_SEGMENTS = _(
    "Skipped: the export has no segments. Edit the export, choose at least one segment and "
    "run it again."
)
UNEXPECTED = _(
    "The run stopped on an unexpected error. It has been logged; run the export again, and "
    "tell an administrator if it happens again."
)
GREW_WHILE_WAITING = _(
    "What it sends changed while it waited for approval, and it would now do more than what was "
    "approved: approve again or discard it."
)
RATE_LIMITED_TOO_LONG = _(
    "The service kept asking us to slow down for too long. Run the export again later."
)


def unaccounted(count: int) -> LaterText:
    return _(
        "%(count)s profiles were neither delivered nor counted as skipped or refused, so the run "
        "is not marked done. Run the export again: it sends them."
    ) % {"count": f"{count:,}"}


def segment_not_ready(segment) -> LaterText:
    if not segment.is_active:
        return _("Skipped: segment “%(name)s” is inactive. Activate it, then run again.") % {
            "name": segment.name
        }
    if segment.status == Segment.Status.FAILED:
        return _("Skipped: segment “%(name)s” failed to refresh (%(error)s).") % {
            "name": segment.name,
            "error": from_stored(segment.last_error),
        }
    return _(
        "Skipped: segment “%(name)s” has not been refreshed yet. Refresh it, then run again."
    ) % {"name": segment.name}


def over_limit(count: int, limit: int, backend: Backend) -> LaterText:
    return _(
        "%(count)s profiles is more than %(service)s accepts in one export (%(limit)s). "
        "Narrow the segments and run again."
    ) % {"count": f"{count:,}", "limit": f"{limit:,}", "service": str(backend.label)}


def mapping_refused(export, error: BackendError) -> LaterText:
    """``Backend.prepare`` refused the export's mapping (a mapped field gone from the list)."""
    return _(
        "Nothing was sent: the export “%(export)s” maps a field the list no longer has. "
        "%(error)s Edit the export and map the field again (Load fields), or create it."
    ) % {"export": export.display_name, "error": error.message}


def for_error(error: BackendError) -> LaterText | str:
    if isinstance(error, AuthRevoked | ListNotFound):
        # Their messages say what happened and what to do (authenticate the connection again,
        # choose another list): wrapped in words of our own, they said it twice.
        return error.message
    if isinstance(error, Permanent):
        return _("The service refused the export: %(error)s") % {"error": error.message}
    if isinstance(error, Transient):
        return _(
            "The service could not be reached or kept failing: %(error)s "
            "Run the export again later."
        ) % {"error": error.message}
    return error.message


def awaiting_approval(run) -> LaterText:
    """Why a scheduled run was skipped: a run of the export awaits approval (it holds it)."""
    return _(
        "Skipped: waiting for approval of run #%(run)s. Approve or discard that run on its page."
    ) % {"run": run.pk}
