"""What the Audit log page calls each action and object type."""

from __future__ import annotations

import json

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.translation import gettext_lazy as _

from audit import SCHEDULE, SYSTEM
from audit.actions import AuditAction

#: Each action's label, in the order the Audit log's filter offers them.
ACTIONS = dict(AuditAction.choices)

#: Who acted when no user did.
ACTORS = {SCHEDULE: _("The schedule"), SYSTEM: _("The system")}

OBJECT_TYPES = {
    "connection": _("Connection"),
    "export": _("Export"),
    "segment": _("Segment"),
    "erasure": _("Erasure"),
    "refreshschedule": _("Refresh schedule"),
    "user": _("User"),
    "apitoken": _("API token"),
    "endpoint": _("Webhook"),
    "exclusion": _("Exclusion"),
}

#: Labels of what snapshots record besides model fields (``exports.services``: the mapping).
EXTRA_LABELS = {"mapping": _("Field mapping")}


def readable_changes(entry) -> list[tuple[str, str | None, str | None]]:
    """An entry's changes for people: each field by its label, and a related object by its
    name (``connection_id: 4`` reads "Connection: Newsletter account"), as far as the object
    still exists; an id that no longer resolves stays an id."""
    model = _model_named(entry.object_type)
    rows = []
    for name, before, after in entry.changes():
        field = _field(model, name)
        if field is None:
            rows.append((str(EXTRA_LABELS.get(name, name)), before, after))
            continue
        rows.append(
            (str(field.verbose_name).capitalize(), _shown(field, before), _shown(field, after))
        )
    return rows


def _model_named(model_name: str) -> type[models.Model] | None:
    return next((m for m in apps.get_models() if m._meta.model_name == model_name), None)


def _field(model, name: str):
    if model is None:
        return None
    for candidate in (name, name.removesuffix("_id")):
        try:
            return model._meta.get_field(candidate)
        except FieldDoesNotExist:
            continue
    return None


def _shown(field, text: str | None) -> str | None:
    """A value as the log stores it (text or JSON), with related ids as their objects' names."""
    if text is None or not field.is_relation or field.related_model is None:
        return text
    try:
        ids = json.loads(text) if field.many_to_many else [json.loads(text)]
    except (TypeError, ValueError):
        return text
    if not isinstance(ids, list):
        return text
    names = {obj.pk: str(obj) for obj in field.related_model._default_manager.filter(pk__in=ids)}
    return ", ".join(names.get(pk, f"#{pk}") for pk in ids)
