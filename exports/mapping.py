"""What an export sends for each person: its mapping rows (profile field -> destination field),
tags and consent, as the run's SQL computes them and as the engine turns them into records.

The e-mail, first name and last name are mapping rows with the keys of the services' built-in
fields (``EMAIL``, ``FIRST_NAME``, ``LAST_NAME``); the recipients table keeps them in columns
of their own, as before. Every other row, the tags field and the consent field go into one JSON
value per member (``extras_sql``), computed in the same set-based statement as the rest, and
covered by the member's fields hash: a changed attribute is sent again, and nothing else.

Adding a row changes the hash only of the members that have a value for it (or, for a row
that clears the service's value when empty, of every member): an empty value left alone is
not in the JSON at all. Removing a row changes the hash of the members that had a value for it,
who are sent once more without it (harmless: the service keeps its value).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from config.translation import gettext_later as _
from connections.types.base import (
    NO_FIELDS,
    DestinationField,
    FieldType,
    Record,
    RecordWarning,
    SendOptions,
)
from exports.models import (
    BUILTIN_NAMES,
    EMAIL,
    FIRST_NAME,
    LAST_NAME,
    Export,
    FieldMapping,
)
from segments.models import Profile, ProfileField
from segments.rules import BUILTIN_FIELDS

#: The most rows one export maps (the services take at most a few dozen custom fields).
MAX_ROWS = 50
#: The most fixed tags per export, and the longest tag.
MAX_TAGS = 20
MAX_TAG_LENGTH = 100
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})
#: What a consent value may be (any case): anything else is a warning on the record, and the
#: export's consent for new people is used instead (never a guess).
CONSENT_YES = frozenset({"yes", "true", "1"})
CONSENT_NO = frozenset({"no", "false", "0"})
#: ``RecordWarning.code`` of a consent value that is not yes or no.
CONSENT_UNREADABLE = "consent_unreadable"


@dataclass(frozen=True)
class MappingRow:
    """One row as the form and the API give it. ``create``: the destination field does not
    exist yet and is created (with ``destination_name`` and ``destination_type``) when the
    export is saved; its key is then the one the service gives it."""

    profile_field: str
    destination_key: str
    destination_name: str = ""
    destination_type: str = FieldType.TEXT
    when_empty: str = FieldMapping.WhenEmpty.LEAVE
    create: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile_field": self.profile_field,
            "destination_key": self.destination_key,
            "destination_name": self.destination_name,
            "destination_type": self.destination_type,
            "when_empty": self.when_empty,
        }


def default_rows() -> list[MappingRow]:
    """What a new export maps: the e-mail, and the names when profiles have them."""
    return [
        MappingRow(EMAIL, EMAIL, BUILTIN_NAMES[EMAIL]),
        MappingRow(FIRST_NAME, FIRST_NAME, BUILTIN_NAMES[FIRST_NAME]),
        MappingRow(LAST_NAME, LAST_NAME, BUILTIN_NAMES[LAST_NAME]),
    ]


def rows_of(export: Export) -> list[MappingRow]:
    return [
        MappingRow(
            row.profile_field,
            row.destination_key,
            row.destination_name,
            row.destination_type,
            row.when_empty,
        )
        for row in export.field_rows()
    ]


def replace_rows(export: Export, rows: Sequence[MappingRow]) -> None:
    """Make ``rows`` the export's mapping, in this order."""
    export.mappings.all().delete()
    FieldMapping.objects.bulk_create(
        FieldMapping(
            export=export,
            position=position,
            profile_field=row.profile_field,
            destination_key=row.destination_key,
            destination_name=row.destination_name or BUILTIN_NAMES.get(row.destination_key, ""),
            destination_type=row.destination_type or FieldType.TEXT,
            when_empty=row.when_empty or FieldMapping.WhenEmpty.LEAVE,
        )
        for position, row in enumerate(rows)
    )
    if hasattr(export, "_prefetched_objects_cache"):
        export._prefetched_objects_cache.pop("mappings", None)


def summary(export: Export) -> list[str]:
    """The mapping in one line per row, for the audit log ("plan → Plan (text), clear")."""
    return [
        f"{row.profile_field} → {row.destination_name or row.destination_key}"
        f" ({row.destination_type}){', clear when empty' if row.clears else ''}"
        for row in export.field_rows()
    ]


def parse_tags(text: str) -> list[str]:
    """Tags typed as comma-separated text, trimmed, without repeats."""
    return list(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))


# What one run sends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendPlan:
    """The export's mapping as one run uses it."""

    custom: tuple[FieldMapping, ...]
    fixed_tags: tuple[str, ...]
    tags_field: str
    consent_field: str
    untag_leavers: bool
    options: SendOptions
    field_types: Mapping[str, str]

    @property
    def has_extras(self) -> bool:
        return bool(self.custom or self.tags_field or self.consent_field or self.fixed_tags)

    def destination_fields(self, export: Export) -> list[DestinationField]:
        """Every mapped destination field but the e-mail, for ``Backend.prepare``."""
        return [
            DestinationField(
                key=row.destination_key,
                name=row.destination_name or row.destination_key,
                type=FieldType(row.destination_type),
                builtin=row.is_builtin,
            )
            for row in export.field_rows()
            if row.destination_key != EMAIL
        ]

    def record(
        self, email: str, first_name: str, last_name: str, extras: Any, returning: bool
    ) -> Record:
        """The record sent for one member, with typed values from its ``extras`` JSON."""
        if not self.has_extras:  # most exports: as cheap as before there were extras
            return Record(email, first_name, last_name, NO_FIELDS, returning)
        extras = _loaded(extras) or {}
        values = extras.get("fields") or {}
        fields = {
            row.destination_key: self._typed(row.profile_field, values[row.destination_key])
            for row in self.custom
            if row.destination_key in values
        }
        tags = list(self.fixed_tags)
        if self.tags_field:
            tags.extend(_tags(extras.get("tags")))
        consent = _consent(extras.get("consent")) if self.consent_field else None
        return Record(
            email,
            first_name,
            last_name,
            fields,
            returning,
            tags=tuple(dict.fromkeys(tags)),
            consent=consent,
        )

    def consent_warning(self, email: str, extras: Any) -> RecordWarning | None:
        """The warning of a record whose consent field holds something other than yes or no
        (its record falls back to the export's consent for new people), else None."""
        if not self.consent_field:
            return None
        value = (_loaded(extras) or {}).get("consent")
        if value is None or _consent(value) is not None:
            return None
        return RecordWarning(
            email,
            CONSENT_UNREADABLE,
            _(
                "The consent field “%(field)s” holds “%(value)s”, which is not yes or no "
                "(yes, no, true, false, 1 or 0): the export's consent for new people was "
                "used instead."
            )
            % {"field": self.consent_field, "value": str(value)[:50]},
        )

    def leaver(self, email: str, extras: Any = None) -> Record:
        """The record of a person who left a mirror export that untags instead of removing:
        the export's fixed tags and those last sent from its tags field (``extras``' "tags",
        from the sync state: ``keeps_sent_tags``) are taken off."""
        sent = (_loaded(extras) or {}).get("tags") if self.tags_field else None
        removed = [*self.fixed_tags, *_tags(sent)]
        return Record(email, removed_tags=tuple(dict.fromkeys(removed)))

    def _typed(self, profile_field: str, value: Any) -> Any:
        """A profile value as its catalogued type says (None stays None: clear the field)."""
        if value is None:
            return None
        kind = self.field_types.get(profile_field, ProfileField.DataType.TEXT)
        if isinstance(value, list):
            return [str(item) for item in value]
        try:
            if kind == ProfileField.DataType.NUMBER:
                return _number(value)
            if kind == ProfileField.DataType.DATE:
                return dt.date.fromisoformat(str(value)[:10])
            if kind == ProfileField.DataType.DATETIME:
                return dt.datetime.fromisoformat(str(value))
            if kind == ProfileField.DataType.BOOLEAN:
                answer = _yes_no(value)
                return value if answer is None else answer
        except ValueError:
            return value  # the backend's ``convert`` refuses it, for this record only
        return value if isinstance(value, str) else json.dumps(value)


def keeps_sent_tags(export: Export) -> bool:
    """Whether the sync state keeps the tags each address was sent from the tags field: only
    where a leaver loses them (mirror mode, "remove tags on leave"), so other exports write
    nothing more than before."""
    return bool(export.is_mirror and export.remove_tags_on_leave and export.tags_field)


def send_plan(export: Export) -> SendPlan:
    rows = export.field_rows()
    custom = tuple(row for row in rows if not row.is_builtin)
    consent = {"yes": True, "no": False}.get(export.consent_default)
    names = {row.profile_field for row in custom} | {export.tags_field, export.consent_field}
    return SendPlan(
        custom=custom,
        fixed_tags=tuple(export.fixed_tags or ()),
        tags_field=export.tags_field,
        consent_field=export.consent_field,
        untag_leavers=export.is_mirror and export.remove_tags_on_leave,
        options=SendOptions(
            new_subscriber_status=export.new_subscriber_status or "subscribed",
            consent_to_track=consent,
        ),
        field_types=dict(
            ProfileField.objects.filter(name__in=names - set(BUILTIN_FIELDS)).values_list(
                "name", "data_type"
            )
        ),
    )


def _loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    return float(text) if any(mark in text for mark in ".eE") else int(text)


def _yes_no(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _consent(value: Any) -> bool | None:
    """A consent value as yes or no; None for anything else (no guess)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, list | dict) or value is None:
        return None
    text = str(value).strip().lower()
    if text in CONSENT_YES:
        return True
    if text in CONSENT_NO:
        return False
    return None


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(tag).strip() for tag in value if str(tag).strip()]
    return parse_tags(str(value))


# The SQL of the recipients table -----------------------------------------------------------------


def extras_sql(plan: SendPlan) -> tuple[str, list[Any]]:
    """An SQL expression over the profiles' table (and its parameters): each member's mapped
    values other than the built-in ones, its tags field and its consent field, as one JSON
    object (jsonb on PostgreSQL, JSON text on SQLite), or NULL when the export maps none."""
    postgresql = connection.vendor == "postgresql"
    if not plan.has_extras:
        return ("NULL::jsonb" if postgresql else "NULL"), []
    function = "jsonb_build_object" if postgresql else "json_object"
    rows = sorted(plan.custom, key=lambda row: row.destination_key)
    params: list[Any] = []
    # An empty value of a row that leaves the service's value alone is not in the object at
    # all (its null is stripped); one of a row that clears it is a null.

    def pairs(chosen: list[FieldMapping]) -> str:
        sql = []
        for row in chosen:
            value, value_params = _value(row.profile_field)
            sql.append(f"%s::text, {value}" if postgresql else f"%s, {value}")
            params.extend([row.destination_key, *value_params])
        return f"{function}({', '.join(sql)})"

    leaving = [row for row in rows if not row.clears]
    clearing = [row for row in rows if row.clears]
    if postgresql:
        fields = f"jsonb_strip_nulls({pairs(leaving)}) || {pairs(clearing)}"
    else:
        # A JSON merge patch drops the patch's nulls: the cleared rows are the target.
        fields = f"json_patch({pairs(clearing)}, {pairs(leaving)})"
    parts = ["'fields', " + fields]
    for name, profile_field in (("tags", plan.tags_field), ("consent", plan.consent_field)):
        if profile_field:
            value, value_params = _value(profile_field)
            parts.append(f"'{name}', {value}")
            params.extend(value_params)
    # Fixed tags are part of what every member is sent: a change of them sends everyone again.
    if plan.fixed_tags:
        parts.append("'fixed_tags', " + ("%s::jsonb" if postgresql else "json(%s)"))
        params.append(json.dumps(list(plan.fixed_tags)))
    return f"{function}({', '.join(parts)})", params


def _value(profile_field: str) -> tuple[str, list[Any]]:
    """A profile field as JSON, NULL when empty (no value, "", null or an empty list)."""
    table = connection.ops.quote_name(Profile._meta.db_table)
    if profile_field in BUILTIN_FIELDS:
        column = f"{table}.{connection.ops.quote_name(profile_field)}"
        if connection.vendor == "postgresql":
            return f"to_jsonb(NULLIF({column}, ''))", []
        return f"json_quote(NULLIF({column}, ''))", []
    if connection.vendor == "postgresql":
        value = f"({table}.attributes -> %s)"
        empty = "NULLIF(NULLIF(NULLIF({}, 'null'::jsonb), '\"\"'::jsonb), '[]'::jsonb)"
        return empty.format(value), [profile_field]
    value = f"({table}.attributes -> %s)"
    return f"json(NULLIF(NULLIF(NULLIF({value}, 'null'), '\"\"'), '[]'))", [
        _sqlite_path(profile_field)
    ]


def _sqlite_path(key: str) -> str:
    return '$."' + key.replace('"', '""') + '"'
