"""Record who changed what: ``audit.record(AuditAction.X, obj, before=audit.snapshot(obj))``.

Services call ``record`` at each change point; the actor and the remote address come from the
request being handled (``audit.context``), or the entry is recorded as done by the system.
Secrets never reach an entry: ``SECRET_FIELDS`` are left out of every snapshot.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from audit.actions import SAVES, AuditAction

#: Fields never recorded, by model label: secrets, their digests, and what stands for a role.
SECRET_FIELDS: dict[str, set[str]] = {
    "connections.connection": {"encrypted_credentials"},
    "auth.user": {"password", "groups", "user_permissions"},
    "accounts.apitoken": {"digest"},
}
#: Any field whose name contains one of these is left out too, declared or not.
SECRET_NAME_PARTS = ("secret", "password", "credential", "digest", "api_key", "token")
#: Bookkeeping that says nothing about who changed what: timestamps the entry has anyway.
NOISE_FIELDS = {"created_at", "updated_at", "date_joined", "last_login", "last_used_at"}
#: State that the application computes (refreshes, checks), by model label: not a person's change.
STATE_FIELDS: dict[str, set[str]] = {
    "segments.segment": {
        "member_count",
        "refresh_state",
        "refresh_requested_at",
        "last_refreshed_at",
        "last_refresh_seconds",
        "last_error",
        "status",
    },
    "connections.connection": {"last_checked_at"},
    "sources.source": {
        "cursor_value",
        "file_version",
        "status",
        "last_error",
        "last_run_at",
        "field_types",
    },
}

_SNAPSHOT = object()
_FROM_CONTEXT = object()
SYSTEM = "system"
SCHEDULE = "schedule"


def _is_recorded(model: type[models.Model], field: models.Field) -> bool:
    name, label = field.name, model._meta.label_lower
    if name in NOISE_FIELDS or name in SECRET_FIELDS.get(label, ()):
        return False
    if name in STATE_FIELDS.get(label, ()):
        return False
    return not any(part in name.lower() for part in SECRET_NAME_PARTS)


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's non-secret fields as JSON values (relations as ids, many-to-many sorted)."""
    model = type(obj)
    values: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if not field.primary_key and _is_recorded(model, field):
            values[field.attname if field.is_relation else field.name] = getattr(obj, field.attname)
    if obj.pk is not None:
        for field in model._meta.many_to_many:
            if _is_recorded(model, field):
                values[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def _changed(before: dict, after: dict) -> tuple[dict, dict]:
    keys = [key for key in before.keys() | after.keys() if before.get(key) != after.get(key)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def record(
    action: AuditAction,
    obj: models.Model | None = None,
    *,
    before: dict | None = None,
    after: Any = _SNAPSHOT,
    actor: Any = _FROM_CONTEXT,
    actor_label: str = "",
    object_type: str = "",
    object_id: Any = "",
    object_label: str = "",
):
    """Append an entry and return it (None for a change that changed nothing).

    ``action`` is one of ``AuditAction`` (or its value): any other raises ValueError, so that
    every action the log holds has its label on the Audit log page.

    ``after`` defaults to a snapshot of ``obj`` as it is now; pass ``after=None`` for a
    deletion (with ``before=snapshot(obj)`` taken first). When both are given, only the fields
    that differ are kept. ``actor`` defaults to the user of the current request; without a user
    the entry is ``actor_label``'s (e.g. ``audit.SCHEDULE``), or else the system's.
    """
    from audit.context import current_actor
    from audit.models import AuditEntry

    action = AuditAction(action)
    if after is _SNAPSHOT:
        after = snapshot(obj) if obj is not None else None
    before = json.loads(json.dumps(before, cls=DjangoJSONEncoder)) if before else before
    if before is not None and after is not None:
        before, after = _changed(before, after)
        if not before and not after and action in SAVES:
            return None  # a save that changed nothing is no news
    context = current_actor()
    if actor is _FROM_CONTEXT:
        user = getattr(context.request, "user", None) if context else None
        actor = user if user is not None and user.is_authenticated else None
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
        object_label = object_label or str(obj)
    return AuditEntry.objects.create(
        actor=actor,
        actor_label=actor.get_username() if actor is not None else (actor_label or SYSTEM),
        action=action.value,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        object_label=object_label[:255],
        before=before,
        after=after,
        remote_address=context.remote_address if context else None,
    )
