"""Reading a profile's raw value as the kind a destination field holds.

Each backend's ``convert`` uses these to read the value (a number, a date, yes or no, options)
and then writes it in its service's format. A value that cannot be read raises ``ValueError``
with a message for a person; the message names the value, the caller names the field.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.utils.translation import gettext

from config.text import shortened
from config.translation import gettext_later as _
from connections.types.base import (
    BUILTIN_KEYS,
    EMAIL_KEY,
    FIRST_NAME_KEY,
    INVALID_VALUE,
    LAST_NAME_KEY,
    VALUE_SHORTENED,
    DestinationField,
    FieldsNotFound,
    FieldType,
    Record,
    RecordFailure,
    RecordWarning,
)

if TYPE_CHECKING:
    from config.translation import LaterText
    from connections.types.base import Backend

_TRUE = frozenset({"true", "yes", "y", "1", "on", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "f"})
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
#: A value quoted in a message is cut to this many characters.
_SHOWN = 60


def _shown(value: object) -> str:
    return shortened(str(value), _SHOWN)


def as_text(value: object) -> str:
    """Any value as text: a list joined with ", ", a date in ISO 8601, yes/no as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return as_datetime(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(as_text(item) for item in value)
    if isinstance(value, Decimal):
        return number_text(value)
    return str(value)


def as_number(value: object) -> Decimal:
    """A number from an int, float, Decimal or text such as "12.50"; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(_("“%(value)s” is yes or no, not a number.") % {"value": value})
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        text = str(value).strip().replace(" ", "")
        number = Decimal("NaN")
        if _NUMBER.match(text):
            with contextlib.suppress(InvalidOperation):
                number = Decimal(text)
    if not number.is_finite():
        raise ValueError(_("“%(value)s” is not a number.") % {"value": _shown(value)})
    return number


def number_text(number: Decimal) -> str:
    """A number as plain decimal text: 24, 12.5 (never 1E+1)."""
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def as_date(value: object) -> date:
    """A date from a date, a date-time or text in YYYY-MM-DD (or YYYY/MM/DD)."""
    if isinstance(value, datetime):
        return as_datetime(value).date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(text[:10], form).date()
        except ValueError:
            continue
    raise ValueError(
        _("“%(value)s” is not a date (write it as YYYY-MM-DD).") % {"value": _shown(value)}
    )


def as_datetime(value: object) -> datetime:
    """A date-time in UTC from a datetime (one without a zone is taken as UTC), a date
    (midnight) or ISO 8601 text."""
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, date):
        found = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            found = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                _("“%(value)s” is not a date and time (write it as YYYY-MM-DD HH:MM).")
                % {"value": _shown(value)}
            ) from None
    if found.tzinfo is None:
        return found.replace(tzinfo=UTC)
    return found.astimezone(UTC)


def as_bool(value: object) -> bool:
    """Yes or no from a bool, the numbers 1 and 0, or text (yes, no, true, false, y, n)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(_("“%(value)s” is not yes or no.") % {"value": _shown(value)})


def as_items(value: object) -> list[str]:
    """Several values from a list or from comma-separated text; blanks and repeats dropped."""
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [as_text(item) for item in value]
    else:
        items = as_text(value).split(",")
    found: list[str] = []
    seen: set[str] = set()
    for item in (item.strip() for item in items):
        if item and item.lower() not in seen:
            seen.add(item.lower())
            found.append(item)
    return found


def as_option(field: DestinationField, value: object) -> str:
    """One of the field's options, as the service lists it (matched ignoring case)."""
    return _option(field, as_text(value).strip(), field.options)


def as_options(field: DestinationField, value: object) -> list[str]:
    """Several of the field's options, as the service lists them."""
    return [_option(field, item, field.options) for item in as_items(value)]


def _option(field: DestinationField, text: str, options: Sequence[str]) -> str:
    if not options:
        return text
    found = next((option for option in options if option.lower() == text.lower()), None)
    if found is None:
        raise ValueError(
            _("“%(value)s” is not one of the choices of %(field)s.")
            % {"value": _shown(text), "field": field.name}
        )
    return found


def fitted(field: DestinationField, text: str) -> tuple[str, str | None]:
    """``text`` shortened to the field's length, with ``VALUE_SHORTENED`` when it had to be."""
    if field.max_length is None or len(text) <= field.max_length:
        return text, None
    return shortened(text, field.max_length), VALUE_SHORTENED


def shortened_message(field: DestinationField) -> LaterText:
    """The warning shown for a value sent shortened to the field's length."""
    return _("The value of %(field)s was longer than %(limit)s characters and was shortened.") % {
        "field": field.name,
        "limit": field.max_length,
    }


def invalid_message(field: DestinationField, error: ValueError) -> LaterText:
    """The failure shown for a value the field cannot take."""
    return _("%(field)s: %(reason)s") % {"field": field.name, "reason": error.args[0]}


@dataclass
class Converted:
    """A record's mapped values as the service takes them: ``values`` by field (None: clear
    it), ``failure`` when one cannot be converted (nothing of the record is sent then), and
    the warnings for values shortened."""

    values: list[tuple[DestinationField, object]] = dataclass_field(default_factory=list)
    failure: RecordFailure | None = None
    warnings: list[RecordWarning] = dataclass_field(default_factory=list)


def convert_record(backend: Backend, record: Record) -> Converted:
    """Convert every mapped custom value of ``record`` with ``backend.convert`` (the fields
    given to ``prepare``); the builtin fields travel in the record's own attributes."""
    converted = Converted()
    for key, value in record.fields.items():
        field = backend.fields_by_key.get(key)
        if field is None:
            if key in BUILTIN_KEYS:
                continue
            converted.failure = RecordFailure(
                record.email,
                INVALID_VALUE,
                _("The field %(field)s was not prepared for this run.") % {"field": key},
            )
            return converted
        if field.builtin:
            continue
        if value is None:
            converted.values.append((field, None))
            continue
        try:
            wire, warning = backend.convert(field, value)
        except ValueError as error:
            converted.failure = RecordFailure(
                record.email, INVALID_VALUE, invalid_message(field, error)
            )
            return converted
        if warning:
            converted.warnings.append(
                RecordWarning(record.email, warning, shortened_message(field))
            )
        converted.values.append((field, wire))
    return converted


def builtin_fields(name_length: int | None = None) -> list[DestinationField]:
    """The address and the two names every service holds, under the builtin keys."""
    return [
        DestinationField(EMAIL_KEY, gettext("Email address"), FieldType.TEXT, builtin=True),
        DestinationField(
            FIRST_NAME_KEY, gettext("First name"), FieldType.TEXT, name_length, builtin=True
        ),
        DestinationField(
            LAST_NAME_KEY, gettext("Last name"), FieldType.TEXT, name_length, builtin=True
        ),
    ]


def fields_at_service(
    service: str,
    list_id: str,
    listed: Sequence[DestinationField],
    mapped: Sequence[DestinationField],
) -> dict[str, DestinationField]:
    """The mapped fields as the service defines them now (its type, length and options), by
    the mapped key. Raises ``Permanent`` naming every mapped custom field the list no longer
    has (``FieldsNotFound``), so that a run fails before it sends anything."""
    by_key = {field.key.lower(): field for field in listed}
    found: dict[str, DestinationField] = {}
    missing: list[str] = []
    for field in mapped:
        current = by_key.get(field.key.lower())
        if current is None and field.builtin:
            current = field
        if current is None:
            missing.append(f"“{field.name}”")
        else:
            found[field.key] = current
    if missing:
        message = (
            _(
                "The field %(fields)s no longer exists in the %(service)s list %(list)s. Create "
                "it there again, or change the export's field mapping."
            )
            if len(missing) == 1
            else _(
                "These fields no longer exist in the %(service)s list %(list)s: %(fields)s. "
                "Create them there again, or change the export's field mapping."
            )
        )
        raise FieldsNotFound(
            message % {"fields": ", ".join(missing), "service": service, "list": list_id}
        )
    return found


def preview_value(value: object) -> str:
    """A converted value as text for Preview."""
    if value is None:
        return gettext("(cleared)")
    if isinstance(value, (list, tuple)):
        return ", ".join(preview_value(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items())
    return as_text(value)
