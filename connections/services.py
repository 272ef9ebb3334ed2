"""Writes on connections, and the bridge between a connection row and its backend.

Secrets are decrypted only here (and in the backend that this module builds). They are never
returned to a view, logged or passed to a task: tasks get a connection id.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop
from django.views.decorators.debug import sensitive_variables

import audit
from audit.actions import AuditAction
from config.translation import LaterText, stored
from connections import selectors, signals
from connections.models import Connection
from connections.types import registry
from connections.types.base import (
    AuthError,
    AuthRevoked,
    Backend,
    BackendError,
    DestinationList,
    StepResult,
    StepStatus,
)
from core import crypto

logger = logging.getLogger(__name__)


class ConnectionInUse(Exception):
    """The connection cannot be removed while exports use it and nobody chose what happens to
    them; ``users`` names them. Raised by ``connection_delete``."""

    def __init__(self, users: list):
        super().__init__("The connection is used by exports.")
        self.users = users


#: One lock per connection in this process, shared by every store (every run) of the
#: connection: see ``DatabaseCredentialStore``.
_connection_locks: dict[int, threading.Lock] = {}
_connection_locks_guard = threading.Lock()


def _connection_lock(connection_id: int) -> threading.Lock:
    with _connection_locks_guard:
        return _connection_locks.setdefault(connection_id, threading.Lock())


class DatabaseCredentialStore:
    """A connection's secrets in the database.

    ``update`` holds the row lock (``SELECT ... FOR UPDATE``) while the change runs, so that
    workers in other processes refreshing the same OAuth tokens take turns and the second one
    sees (and uses) the first one's tokens instead of spending a rotated refresh token twice.

    Within a process, ``update`` also holds a lock of the connection's, and ``load`` waits for
    it: while one batch refreshes an expired token, the batches about to be sent wait for the
    new token instead of going out with the old one to be refused, and the other batches that
    were refused queue here rather than each holding a database connection on the row lock.
    """

    #: How long ``load`` trusts what it read last. A token another worker refreshed meanwhile is
    #: still found: a rejected token makes the client refresh through ``update``, which reads
    #: the row under its lock first.
    CACHE_SECONDS = 60.0

    def __init__(self, connection_id: int):
        self.connection_id = connection_id
        self._lock = _connection_lock(connection_id)
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0

    def load(self) -> dict[str, Any]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached_at >= self.CACHE_SECONDS:
                self._remember(self._read())
            return dict(self._cached)

    def _remember(self, credentials: dict[str, Any]) -> None:
        self._cached, self._cached_at = dict(credentials), time.monotonic()

    def _read(self) -> dict[str, Any]:
        token = (
            Connection.objects.filter(pk=self.connection_id)
            .values_list("encrypted_credentials", flat=True)
            .first()
        )
        try:
            return crypto.decrypt_json(token or "")
        except crypto.DecryptionError:
            raise AuthRevoked(
                LaterText(
                    gettext_noop(
                        "The stored credentials can no longer be read: the encryption key that "
                        "protected them was removed. Edit the connection and authenticate again."
                    )
                )
            ) from None

    @sensitive_variables("current", "changed")
    def update(self, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
        with self._lock:
            with transaction.atomic():
                row = (
                    Connection.objects.select_for_update()
                    .only("id", "encrypted_credentials")
                    .get(pk=self.connection_id)
                )
                current = crypto.decrypt_json(row.encrypted_credentials)
                changed = change(dict(current))
                if changed is not None:
                    Connection.objects.filter(pk=self.connection_id).update(
                        encrypted_credentials=crypto.encrypt_json(changed),
                        updated_at=timezone.now(),
                    )
                    current = changed
            self._remember(current)
        return dict(current)

    def auth_failed(self, message: str) -> None:
        connection_record_auth_failure(connection_id=self.connection_id, message=message)


def backend_for(connection: Connection) -> Backend:
    """The backend of a connection's type, reading its secrets from the database."""
    return registry.backend_class(connection.kind)(DatabaseCredentialStore(connection.pk))


@sensitive_variables("credentials")
def credentials_verify(*, kind: str, credentials: dict[str, Any]) -> None:
    """Check typed-in credentials with the service; raises ``BackendError`` with the reason."""
    registry.backend_class(kind).verify(credentials)


def oauth_authorize_url(*, kind: str, redirect_uri: str, state: str) -> str:
    return registry.backend_class(kind).authorize_url(redirect_uri=redirect_uri, state=state)


def oauth_exchange_code(*, kind: str, code: str, redirect_uri: str) -> str:
    """Exchange an OAuth code; returns the credentials already encrypted, ready to be kept in
    the session until the connection is saved (or stored at once on re-authentication)."""
    credentials = registry.backend_class(kind).exchange_code(code=code, redirect_uri=redirect_uri)
    return crypto.encrypt_json(credentials)


@sensitive_variables("credentials")
def credentials_encrypt(credentials: dict[str, Any]) -> str:
    return crypto.encrypt_json(credentials)


@transaction.atomic
def connection_create(
    *,
    kind: str,
    display_name: str,
    who_can_use: str,
    encrypted_credentials: str,
    consent_given_by,
    consent_given_at: dt.datetime,
    created_by,
    add_creator_as_export_user: bool,
) -> Connection:
    """Save a connection whose credentials were checked (API key) or obtained (OAuth)."""
    registry.backend_class(kind)  # refuses unknown kinds
    crypto.decrypt_json(encrypted_credentials)  # refuses tokens that this server cannot read
    connection = Connection.objects.create(
        kind=kind,
        display_name=display_name,
        who_can_use=who_can_use,
        encrypted_credentials=encrypted_credentials,
        consent_given_by=consent_given_by,
        consent_given_at=consent_given_at,
        created_by=created_by,
        status=Connection.Status.HEALTHY,
        last_checked_at=timezone.now(),
    )
    if add_creator_as_export_user and created_by is not None:
        connection.export_users.add(created_by)
    audit.record(AuditAction.CONNECTION_CREATED, connection)
    return connection


@sensitive_variables("credentials")
@transaction.atomic
def connection_update(
    *,
    connection: Connection,
    display_name: str,
    who_can_use: str,
    credentials: dict[str, Any] | None = None,
    user=None,
    user_is_export_user: bool | None = None,
) -> Connection:
    """Change the name and who can use it; replace the secrets only when new ones are given
    (they were checked by the caller). Who-can-use changes never touch exports (C8)."""
    before = audit.snapshot(connection)
    connection.display_name = display_name
    connection.who_can_use = who_can_use
    fields = ["display_name", "who_can_use", "updated_at"]
    if credentials:
        connection.encrypted_credentials = crypto.encrypt_json(credentials)
        _mark_healthy(connection)
        fields += ["encrypted_credentials", "status", "last_error", "last_checked_at"]
    connection.save(update_fields=fields)
    if user is not None and user_is_export_user is not None:
        if user_is_export_user:
            connection.export_users.add(user)
        else:
            connection.export_users.remove(user)
    action = (
        AuditAction.CONNECTION_CREDENTIALS_REPLACED
        if credentials
        else AuditAction.CONNECTION_UPDATED
    )
    audit.record(action, connection, before=before)
    return connection


@transaction.atomic
def connection_set_encrypted_credentials(
    *, connection: Connection, encrypted_credentials: str
) -> Connection:
    """Store credentials from a new OAuth authorization; the connection is healthy again."""
    crypto.decrypt_json(encrypted_credentials)
    before = audit.snapshot(connection)
    connection.encrypted_credentials = encrypted_credentials
    _mark_healthy(connection)
    connection.save(
        update_fields=[
            "encrypted_credentials",
            "status",
            "last_error",
            "last_checked_at",
            "updated_at",
        ]
    )
    audit.record(AuditAction.CONNECTION_REAUTHENTICATED, connection, before=before)
    return connection


def connection_delete(*, connection: Connection, dependants_action: str = "") -> None:
    """Remove a connection. What uses it is detached (``signals.DETACH``) or removed
    (``signals.REMOVE``) first: ``signals.connection_deleting`` announces the choice and the
    exports app carries it out. Whatever still uses the connection then (``selectors
    .connection_users``: without a choice, everything) refuses the removal with
    ``ConnectionInUse``, which names it, and nothing changes."""
    with transaction.atomic():
        # Locked first: an export cannot start using the connection while it goes.
        Connection.objects.select_for_update().filter(pk=connection.pk).first()
        if dependants_action:
            signals.connection_deleting.send(
                sender=Connection, connection=connection, dependants_action=dependants_action
            )
        users = selectors.connection_users(connection)
        if users:
            raise ConnectionInUse(users)
        audit.record(
            AuditAction.CONNECTION_DELETED,
            connection,
            before=audit.snapshot(connection),
            after=None,
        )
        connection.delete()


def destination_lists(connection: Connection) -> list[DestinationList]:
    """The lists of the account behind the connection; raises ``BackendError`` with a reason."""
    return backend_for(connection).list_destinations()


def destination_find(connection: Connection, list_id: str) -> DestinationList | None:
    """The list ``list_id`` names in the account behind the connection, or None; raises
    ``BackendError`` with a reason when the service cannot be asked."""
    return backend_for(connection).find_destination(list_id)


def connection_test(*, connection_id: int) -> list[StepResult]:
    """Run the type's connection test through the real client, and record the outcome."""
    connection = Connection.objects.get(pk=connection_id)
    steps = backend_for(connection).test()
    failed = next((step for step in steps if step.status == StepStatus.FAILED), None)
    connection.refresh_from_db(fields=["status"])
    if failed is None:
        _mark_healthy(connection)
    else:
        if isinstance(failed.error, AuthRevoked):
            connection.status = Connection.Status.NEEDS_REAUTHENTICATION
        elif not isinstance(failed.error, AuthError):
            connection.status = Connection.Status.FAILING
        connection.last_error = stored(failed.message)
        connection.last_checked_at = timezone.now()
    connection.save(update_fields=["status", "last_error", "last_checked_at", "updated_at"])
    return steps


def connection_record_auth_failure(*, connection_id: int, message: LaterText | str) -> None:
    """The service no longer accepts the credentials: an administrator must authenticate again.

    The first time (the status changes), ``signals.connection_needs_reauthentication`` is
    sent (exports e-mail the creators and administrators); the status is changed in one guarded
    UPDATE so that workers failing at once announce it only once.
    """
    logger.warning("Connection %s needs re-authentication", connection_id)
    changes = {
        "status": Connection.Status.NEEDS_REAUTHENTICATION,
        "last_error": stored(message),
        "last_checked_at": timezone.now(),
        "updated_at": timezone.now(),
    }
    connections = Connection.objects.filter(pk=connection_id)
    changed = connections.exclude(status=Connection.Status.NEEDS_REAUTHENTICATION).update(**changes)
    if not changed:
        connections.update(**changes)
        return
    # send_robust: a receiver that fails (an alert that cannot go out) is logged by Django and
    # never hides the authentication error from the caller.
    signals.connection_needs_reauthentication.send_robust(
        sender=Connection, connection_id=connection_id
    )


def connection_record_error(*, connection_id: int, error: BackendError) -> None:
    """For the export engine: remember a failure of the connection once."""
    if isinstance(error, AuthRevoked):
        # The client that met the refusal has recorded it (``auth_failed``), unless it came
        # from elsewhere (credentials that can no longer be decrypted).
        recorded = Connection.objects.filter(
            pk=connection_id, status=Connection.Status.NEEDS_REAUTHENTICATION
        ).exists()
        if not recorded:
            connection_record_auth_failure(connection_id=connection_id, message=error.message)
        return
    Connection.objects.filter(pk=connection_id).exclude(
        status=Connection.Status.NEEDS_REAUTHENTICATION
    ).update(
        status=Connection.Status.FAILING,
        last_error=stored(error.message),
        last_checked_at=timezone.now(),
        updated_at=timezone.now(),
    )


def credentials_reencrypt_all() -> int:
    """Re-encrypt every connection's secrets with the newest key (after adding a key in front
    of FIELD_ENCRYPTION_KEY); returns how many rows were rewritten."""
    count = 0
    for connection_id in Connection.objects.values_list("id", flat=True):
        with transaction.atomic():
            row = (
                Connection.objects.select_for_update()
                .only("encrypted_credentials")
                .get(pk=connection_id)
            )
            Connection.objects.filter(pk=connection_id).update(
                encrypted_credentials=crypto.reencrypt(row.encrypted_credentials)
            )
        count += 1
    audit.record(
        AuditAction.CONNECTION_KEYS_ROTATED, object_type="connection", after={"connections": count}
    )
    return count


def _mark_healthy(connection: Connection) -> None:
    connection.status = Connection.Status.HEALTHY
    connection.last_error = ""
    connection.last_checked_at = timezone.now()
