"""The consent read-back: who unsubscribed, bounced, complained or was cleaned at a connection's
service, read page by page into ``segments.ConsentRecord``.

A read asks the backend for every page (``Backend.read_consent``) of the connection's lists (at
most ``max_consent_lists``, in id order, so a resumed read names the same lists). Each page's
events are sent to PostgreSQL as the page arrives (``segments.consent.ConsentStaging``: a
temporary table of the session, outside any transaction) and, once ``STORE_EVERY_EVENTS``
were sent (or the read ends), stored by one upsert with the cursor after the last page in one
transaction. A page that cannot be read first stores what was sent, then fails: the retry goes
on from the failed page. A read that dies without a word (a killed worker) loses only what was
sent since the last store, which the next read asks the service for again, and no record is
lost or stored twice. When the read completes, the next
read asks for what changed since this one started (``ConsentReadBack.since``). When the
service refuses to go on from a stored cursor (a ``Permanent`` error), the next read starts
over. Nothing here ever lifts a record.

Never two reads of one connection at once: a read holds a PostgreSQL session advisory lock on
the connection for as long as it runs (let go when its worker's connection closes, so a killed
worker frees it).

A failed read is retried by its task as an export's batch is: ``RateLimited`` after the wait
the service asked for, ``Transient`` and ``AuthExpired`` with backoff; ``AuthRevoked`` and
``Permanent`` fail at once with their message.
"""

from __future__ import annotations

import functools
import logging
import random
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

import audit
from audit.actions import AuditAction
from config.translation import LaterText, stored
from config.translation import gettext_later as _
from connections import services
from connections.models import Connection, ConsentReadBack
from connections.permissions import CHANGE_CONNECTION
from connections.types import registry
from connections.types.base import (
    AuthExpired,
    AuthRevoked,
    BackendError,
    ConsentPage,
    Permanent,
    RateLimited,
    Transient,
)
from core.in_order import InOrder
from segments.consent import ConsentStaging

logger = logging.getLogger(__name__)

#: Pages sent since the last store are stored once they hold this many events (or the read
#: ends), with the cursor after the last of them in one transaction: per-page transactions
#: cost several times the upsert itself (README, "What the measurements decided").
STORE_EVERY_EVENTS = 10_000
#: Pages read while the pages before them are being stored (``InOrder``): PostgreSQL stores
#: while the service serves, and the memory held stays a few pages'.
PAGES_READ_AHEAD = 20
_LOCK_KEY = zlib.crc32(b"connections.consent_read") & 0x7FFFFFFF
UNEXPECTED = _(
    "The read-back stopped on an unexpected error. It has been logged; the next read goes on "
    "from its last stored page. Tell an administrator if it happens again."
)


class ReadBackAlreadyRunning(Exception):
    """A read of this connection is running: a second one is not started."""


class ReadBackNotPossible(Exception):
    """The connection cannot be read back now; ``message`` says why and what to do."""

    def __init__(self, message: LaterText | str):
        super().__init__(str(message))
        self.message = message


# Which connections --------------------------------------------------------------------------------


def reads_consent(connection: Connection) -> bool:
    """Whether the connection's type reads consent back."""
    return registry.backend_class(connection.kind).reads_consent


def read_back_state(connection: Connection) -> ConsentReadBack:
    """The connection's read-back row (made, as "never read", the first time)."""
    state, _created = ConsentReadBack.objects.get_or_create(connection=connection)
    return state


def connections_to_read() -> list[Connection]:
    """The connections the refresh reads back: those whose type reads consent, except those
    waiting for an administrator to authenticate again."""
    return [
        connection
        for connection in Connection.objects.exclude(
            status=Connection.Status.NEEDS_REAUTHENTICATION
        ).order_by("display_name", "id")
        if reads_consent(connection)
    ]


def _refusal(connection: Connection) -> LaterText | None:
    if not reads_consent(connection):
        return _("%(service)s connections do not read consent back yet.") % {
            "service": connection.kind_label
        }
    if connection.needs_reauthentication:
        return _(
            "The connection needs to be authenticated again before its consent can be read "
            "back. Edit the connection and authenticate again."
        )
    return None


# Starting ---------------------------------------------------------------------------------------


def read_back_request(*, connection: Connection, user) -> ConsentReadBack:
    """**Read back now**: queue a read of the connection, audited. Raises
    ``ReadBackNotPossible`` (with the reason) or ``ReadBackAlreadyRunning``."""
    from connections import tasks

    if not CHANGE_CONNECTION.allows(user):
        raise ReadBackNotPossible(str(CHANGE_CONNECTION.refusal))
    refusal = _refusal(connection)
    if refusal is not None:
        raise ReadBackNotPossible(refusal)
    with transaction.atomic():
        read_back_state(connection)
        state = ConsentReadBack.objects.select_for_update().get(connection=connection)
        if _someone_reads(connection.pk):
            raise ReadBackAlreadyRunning()
        state.status = ConsentReadBack.Status.QUEUED
        state.last_error = ""
        state.save(update_fields=["status", "last_error"])
        audit.record(
            AuditAction.CONSENT_READ_STARTED,
            connection,
            after={"consent_read": "on_demand"},
        )
        requested_by = user.pk
        transaction.on_commit(
            lambda: tasks.read_back_consent.delay(connection.pk, requested_by=requested_by)
        )
    return state


def _someone_reads(connection_id: int) -> bool:
    with _read_lock(connection_id) as acquired:
        return not acquired


@contextmanager
def _read_lock(connection_id: int) -> Iterator[bool]:
    """Whether this process may read the connection: on PostgreSQL a session advisory lock,
    let go when the worker's database connection closes (so a killed worker frees it)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_KEY, connection_id])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_KEY, connection_id])


# Reading ----------------------------------------------------------------------------------------


def read_back_execute(*, connection_id: int) -> ConsentReadBack:
    """Read the connection's consent back, page by page, from where the last read stopped.

    Raises ``ReadBackAlreadyRunning`` when another process is reading it, and the backend's
    error (after recording it on the row) when a page cannot be read.
    """
    with _read_lock(connection_id) as acquired:
        if not acquired:
            raise ReadBackAlreadyRunning()
        target = Connection.objects.get(pk=connection_id)
        state = read_back_state(target)
        if not state.cursor:  # a new read; otherwise the last one goes on from its cursor
            state.started_at = timezone.now()
            state.pages_read = state.read_count = state.new_count = state.invalid_count = 0
        state.status = ConsentReadBack.Status.RUNNING
        state.finished_at = None
        state.save()
        try:
            refusal = _refusal(target)
            if refusal is not None:
                raise Permanent(refusal)
            _read_pages(target, state)
        except BackendError as error:
            if isinstance(error, Permanent) and state.cursor:
                # The service refuses to go on from the stored cursor (it expired, a list went):
                # the next read starts over; what was stored is stored once all the same.
                state.cursor = ""
                state.save(update_fields=["cursor"])
            _finish(state, ConsentReadBack.Status.FAILED, failure_message(error))
            if isinstance(error, AuthRevoked):
                services.connection_record_error(connection_id=connection_id, error=error)
            raise
        except DatabaseError as error:
            logger.exception("Consent read-back of connection %s failed", connection_id)
            _finish(
                state,
                ConsentReadBack.Status.FAILED,
                _("The read-back failed in our database: %(error)s")
                % {"error": type(error).__name__},
            )
            raise
        return state


def _read_pages(target: Connection, state: ConsentReadBack) -> None:
    backend = services.backend_for(target)
    lists = sorted(found.id for found in backend.list_destinations())[: backend.max_consent_lists]
    cursor = state.cursor or None
    # The pages are stored behind the reading, on a connection of their own, so that
    # PostgreSQL stores while the service serves the next pages; inside the caller's
    # transaction they are stored in it, each before the next page is asked for.
    behind = InOrder(
        background=connection.vendor == "postgresql" and not connection.in_atomic_block,
        name=f"consent-store-{target.pk}",
        max_waiting=PAGES_READ_AHEAD,
    )
    store = _PageStore(target, state, own_session=behind.background)
    try:
        behind.submit(store.start)
        while True:
            try:
                page = backend.read_consent(lists, since=state.since, cursor=cursor)
                if page.cursor is not None and page.cursor == cursor:
                    raise Permanent(
                        _(
                            "The service gave the same page of its consent records twice, so "
                            "the read-back stopped. Try again later."
                        )
                    )
            except Exception:
                # What was read is stored before the error goes on, with the cursor of the
                # page that failed: the retry asks for that page first.
                behind.submit(functools.partial(store.store_what_was_read, cursor=cursor))
                behind.finish()
                raise
            behind.submit(functools.partial(store.add, page))
            if page.cursor is None:
                behind.finish()
                return
            cursor = page.cursor
    except BaseException:
        behind.abandon()  # a killed read stores no more than it had stored
        raise


class _PageStore:
    """The storing half of a read: each page sent to ``staging`` as it comes, and stored with
    the cursor after it once ``STORE_EVERY_EVENTS`` were sent or the read ends. Its calls
    come in the order of the pages, one at a time (``InOrder``), and use the database of the
    thread they run in."""

    def __init__(self, target: Connection, state: ConsentReadBack, *, own_session: bool):
        self.target, self.state, self.own_session = target, state, own_session
        self.pages = self.events = self.invalid = 0

    def start(self) -> None:
        self.staging = ConsentStaging(own_session=self.own_session)
        self.staging.start()

    def add(self, page: ConsentPage) -> None:
        self.invalid += self.staging.add(page.events)
        self.events += len(page.events)
        self.pages += 1
        if page.cursor is None or self.events >= STORE_EVERY_EVENTS:
            self.store(cursor=page.cursor)

    def store_what_was_read(self, *, cursor: str | None) -> None:
        """Before a page that failed: store the pages sent before it, if any, with its
        cursor (the retry asks for that page first)."""
        if self.pages:
            self.store(cursor=cursor)

    def store(self, *, cursor: str | None) -> None:
        """Store the pages sent since the last store and the cursor after the last of them,
        together; a ``None`` cursor ends the read."""
        state = self.state
        self.staging.end_copy()
        with transaction.atomic():
            _commit_without_waiting_for_the_disk()
            new = self.staging.apply(
                connection_id=self.target.pk, connection_name=self.target.display_name
            )
            state.pages_read += self.pages
            state.read_count += self.events
            state.new_count += new
            state.invalid_count += self.invalid
            state.cursor = cursor or ""
            if cursor is None:
                state.since = state.started_at
                state.status = ConsentReadBack.Status.SUCCEEDED
                state.last_error = ""
                state.finished_at = state.last_read_at = timezone.now()
            state.save()
        self.pages = self.events = self.invalid = 0


def _commit_without_waiting_for_the_disk() -> None:
    """A page's records and the cursor after them are committed together; if the database
    server itself crashed before writing them to disk it would lose both, and the read would
    read those pages again: so its commits need not wait for the disk (PostgreSQL's
    ``synchronous_commit``, for this transaction only), which makes each page several times
    cheaper."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def _finish(state: ConsentReadBack, status: str, error: LaterText | str) -> None:
    state.status = status
    state.last_error = stored(error)
    state.finished_at = timezone.now()
    state.save(update_fields=["status", "last_error", "finished_at"])


def failure_message(error: BackendError) -> LaterText | str:
    """What a person reads about a failed read: the service's error in our words."""
    if isinstance(error, AuthRevoked | Permanent):
        return error.message
    return _(
        "The service could not be reached or kept failing: %(error)s The read-back goes on "
        "from its last stored page next time."
    ) % {"error": error.message}


# Retrying ---------------------------------------------------------------------------------------


def retry_delay(error: BackendError, *, attempt: int, rate_limited_for: float) -> float | None:
    """Seconds to wait before trying a failed read again, or None to stop (the error is for
    good, or the retries ran out). Waiting out a rate limit does not use up a retry."""
    if isinstance(error, RateLimited):
        wait = error.wait if error.hinted else _backoff(min(attempt + 1, 6))
        if rate_limited_for + wait > settings.EXPORT_MAX_RATE_LIMIT_WAIT_SECONDS:
            return None
        return wait
    if isinstance(error, Transient | AuthExpired) and attempt < settings.EXPORT_MAX_RETRIES:
        pause = _backoff(attempt + 1)
        asked = getattr(error, "wait", None)
        if asked:
            pause = max(pause, min(asked, settings.EXPORT_MAX_RATE_LIMIT_WAIT_SECONDS))
        return pause
    return None


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter (as the export engine's)."""
    ceiling = min(
        settings.EXPORT_BACKOFF_MAX_SECONDS, settings.EXPORT_BACKOFF_BASE_SECONDS * 2**attempt
    )
    return random.uniform(ceiling / 2, ceiling)


def read_back_run(
    *,
    connection_id: int,
    requested_by: int | None = None,
    attempt: int = 0,
    rate_limited_for: float = 0.0,
) -> ConsentReadBack | None:
    """One try of a read (the task's body, and the refresh chain's step). A read that fails
    for now is marked "waiting to try again" and its task is queued again after the wait; a
    read that fails for good stays failed with the message. Never raises a backend error, so a
    failing connection never stops the others. None when the connection is gone or another
    process is reading it."""
    if requested_by is not None and not _still_allowed(requested_by):
        state = ConsentReadBack.objects.filter(connection_id=connection_id).first()
        if state is not None:
            _finish(state, ConsentReadBack.Status.FAILED, CHANGE_CONNECTION.refusal)
        return state
    try:
        return read_back_execute(connection_id=connection_id)
    except Connection.DoesNotExist:
        return None
    except ReadBackAlreadyRunning:
        logger.info("Consent read-back of connection %s skipped: already reading", connection_id)
        return None
    except DatabaseError:
        return ConsentReadBack.objects.filter(connection_id=connection_id).first()
    except BackendError as error:
        return _retry_or_fail(connection_id, error, attempt, rate_limited_for)
    except Exception:
        # A fault of ours or a backend's (a bug): logged, and the other connections are read.
        logger.exception("Consent read-back of connection %s stopped", connection_id)
        state = ConsentReadBack.objects.filter(connection_id=connection_id).first()
        if state is not None:
            _finish(state, ConsentReadBack.Status.FAILED, UNEXPECTED)
        return state


def _retry_or_fail(
    connection_id: int, error: BackendError, attempt: int, rate_limited_for: float
) -> ConsentReadBack:
    from connections import tasks

    state = ConsentReadBack.objects.get(connection_id=connection_id)
    delay = retry_delay(error, attempt=attempt, rate_limited_for=rate_limited_for)
    if delay is None:
        logger.warning("Consent read-back of connection %s failed: %s", connection_id, error)
        return state
    logger.info(
        "Consent read-back of connection %s: %s; retry in %.0fs", connection_id, error, delay
    )
    state.status = ConsentReadBack.Status.RETRYING
    state.save(update_fields=["status"])
    waited = rate_limited_for + (delay if isinstance(error, RateLimited) else 0.0)
    tries = attempt if isinstance(error, RateLimited) else attempt + 1
    transaction.on_commit(
        lambda: tasks.read_back_consent.apply_async(
            args=[connection_id],
            kwargs={"attempt": tries, "rate_limited_for": waited},
            countdown=delay,
        )
    )
    return state


def _still_allowed(user_id: int) -> bool:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    return user is not None and CHANGE_CONNECTION.allows(user)


def read_back_all() -> dict[str, int]:
    """The refresh chain's step: read back every connection that reads consent, one after the
    other, in this process (segments refresh after, on what was read). A connection that fails
    is recorded and retried by its task; the others are read all the same."""
    read = failed = skipped = 0
    for target in connections_to_read():
        state = read_back_run(connection_id=target.pk)
        if state is None:
            skipped += 1
        elif state.status == ConsentReadBack.Status.SUCCEEDED:
            read += 1
        else:
            failed += 1
    return {
        "consent_reads": read,
        "consent_reads_failed": failed,
        "consent_reads_skipped": skipped,
    }
