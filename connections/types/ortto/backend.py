"""Ortto as an export destination: an API key and a region, person merges of 100.

Ortto's audiences are filters over person data: nobody is added to one directly
(ortto_api.md §4). An export therefore sends to an audience whose filter is "a Yes/No custom
field is true": every member gets that field set to true, and a mirror run sets it to false for
leavers, so the filter drops them. People are never archived (an archived person who comes back
is a new person without their opt-out history, §5).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.utils.translation import gettext, gettext_lazy

from config.text import shortened
from config.translation import LaterText
from config.translation import gettext_later as _
from connections.types.base import (
    DEFAULT_SEND_OPTIONS,
    INVALID_VALUE,
    Backend,
    ConsentEvent,
    ConsentPage,
    ConsentState,
    DestinationField,
    DestinationList,
    FieldType,
    ListNotFound,
    Permanent,
    PushResult,
    RateLimited,
    Record,
    RecordFailure,
    RecordWarning,
    SendOptions,
    StepResult,
    StepSkipped,
    Transient,
    run_steps,
)
from connections.types.ortto.client import MAX_PEOPLE, OrttoClient
from connections.types.ortto.forms import OrttoCredentialsForm
from connections.types.values import (
    as_bool,
    as_date,
    as_datetime,
    as_number,
    as_option,
    as_options,
    as_text,
    builtin_fields,
    convert_record,
    fields_at_service,
    fitted,
    preview_value,
)

MARKER = re.compile(r"bol:cm:[a-z0-9][a-z0-9-]*")
DONE = frozenset({"created", "merged", "ignored"})


def marker_of(audience: dict[str, Any]) -> str:
    """The Yes/No custom field the audience's filter uses, or "" when it uses none."""
    found = MARKER.search(json.dumps(audience.get("filter") or {}))
    return found.group(0) if found else ""


#: What a consent read reads, in order (ortto_api.md §10): the people whose email permission
#: is off, then the email suppression list.
CONSENT_STREAMS = ("permission-off", "suppression-list")
#: The longest reason kept (``ConsentEvent.reason``).
MAX_REASON = 200
#: The code of a returning person found without email permission before being sent again.
OPTED_OUT_CODE = "unsubscribed"
#: Ortto's field types (``display_type``) as ours; by the id's prefix when the type is unknown.
FIELD_TYPES = {
    "text": FieldType.TEXT,
    "large_text": FieldType.TEXT,
    "link": FieldType.TEXT,
    "integer": FieldType.NUMBER,
    "decimal": FieldType.NUMBER,
    "currency": FieldType.NUMBER,
    "price": FieldType.NUMBER,
    "date": FieldType.DATE,
    "time": FieldType.DATETIME,
    "bool": FieldType.BOOLEAN,
    "single_select": FieldType.SINGLE_SELECT,
    "multi_select": FieldType.MULTI_SELECT,
}
PREFIX_TYPES = {
    "str": FieldType.TEXT,
    "int": FieldType.NUMBER,
    "bol": FieldType.BOOLEAN,
    "dtz": FieldType.DATE,
    "tme": FieldType.DATETIME,
    "sst": FieldType.MULTI_SELECT,
}
#: Ortto holds these numbers in thousandths, as integers (§9).
THOUSANDTHS = frozenset({"decimal", "currency", "price"})
#: The field type Ortto creates for each of ours.
CREATE_TYPES = {
    FieldType.TEXT: "text",
    FieldType.NUMBER: "decimal",
    FieldType.DATE: "date",
    FieldType.DATETIME: "time",
    FieldType.BOOLEAN: "bool",
    FieldType.SINGLE_SELECT: "single_select",
    FieldType.MULTI_SELECT: "multi_select",
}
#: Text lengths Ortto keeps: a string field, a large text field (§7).
MAX_TEXT = 255
MAX_LARGE_TEXT = 4000
BUILTIN_IDS = {"email": "str::email", "first_name": "str::first", "last_name": "str::last"}


class OrttoBackend(Backend):
    label = gettext_lazy("Ortto")
    icon = "img/connections/ortto.svg"
    help_template = "connections/ortto/_help.html"
    list_hint = gettext_lazy(
        "Ortto: pick an audience whose filter is “a Yes/No custom field is true”; the export "
        "sets that field on its people and clears it for those who leave."
    )
    fields_hint = gettext_lazy(
        "Ortto receives the first and last name as its first and last name fields."
    )
    batch_size = MAX_PEOPLE
    #: Clearing the marker reads up to 100 people's permissions, then merges them: one token.
    removal_batch_size = MAX_PEOPLE
    #: As Autopilot, which Ortto replaces: 100,000 profiles in total per export (product.md E5).
    max_profiles = 100_000
    #: The address is on Ortto's email suppression list, or a returning person's email
    #: permission is off.
    opted_out_codes = frozenset({"suppressed", OPTED_OUT_CODE})
    opted_out_states = MappingProxyType({"suppressed": ConsentState.SUPPRESSED})
    #: An address or a value Ortto does not take.
    lasting_refusal_codes = frozenset({"invalid-email", "invalid-field", INVALID_VALUE})
    credentials_form_class = OrttoCredentialsForm
    supports_tags = True
    creatable_field_types = frozenset(CREATE_TYPES)
    consent_field_label = gettext_lazy("Email permission")

    credentials_rejected_message = _(
        "Ortto rejected this API key for this region. Check both and try again."
    )

    def __init__(self, store, *, client: OrttoClient | None = None):
        super().__init__(store)
        self.client = client or OrttoClient(store)
        self._markers: dict[str, str] = {}
        self._thousandths: set[str] = set()  # ids of decimal, currency and price fields
        #: Whom ``erase`` found, by address: once archived, a person is not found by email.
        self._erasing: dict[str, str] = {}

    @property
    def rate_limit(self) -> float:  # type: ignore[override]
        """Requests per second per key: 5 by default (ortto_api.md §7), a setting per plan."""
        return settings.ORTTO_RATE_LIMIT

    def authenticate(self) -> None:
        self.client.audiences(limit=1)

    def test(self) -> list[StepResult]:
        found: dict[str, Any] = {}

        def credentials() -> LaterText:
            self.client.audiences(limit=1)
            return _("Ortto accepted the API key.")

        def audiences() -> LaterText:
            found["audiences"] = self.client.audiences()
            if not found["audiences"]:
                return _("No audiences found. Create an audience in Ortto first.")
            return _("Found %(count)d audiences.") % {"count": len(found["audiences"])}

        def markers() -> LaterText:
            usable = [a for a in found["audiences"] if marker_of(a)]
            if not found["audiences"]:
                raise StepSkipped(_("There is no audience to check. Create one in Ortto."))
            return _("%(usable)d of %(count)d audiences filter on a Yes/No custom field.") % {
                "usable": len(usable),
                "count": len(found["audiences"]),
            }

        return run_steps(
            [
                (_("API key accepted"), credentials),
                (_("Audiences readable"), audiences),
                (_("Audience filters readable"), markers),
            ],
            skip_message=_("Skipped: fix the failed step above first."),
        )

    def list_destinations(self) -> list[DestinationList]:
        destinations = []
        for audience in self.client.audiences():
            audience_id = str(audience.get("id"))
            name = str(audience.get("name") or audience_id)
            marker = marker_of(audience)
            self._markers[audience_id] = marker
            note = _("sets %(field)s") % {"field": marker} if marker else _NO_MARKER_NOTE
            destinations.append(DestinationList(id=audience_id, name=f"{name} ({note})"))
        return destinations

    def list_fields(self, list_id: str) -> list[DestinationField]:
        """The builtins, then the person custom fields but the Yes/No fields that audiences
        filter on (the export sets its own), phones and objects."""
        markers = {marker for marker in self._markers.values() if marker}
        with contextlib.suppress(Permanent):
            markers.add(self._marker(list_id))
        fields = builtin_fields(MAX_TEXT)
        for item in self.client.custom_fields():
            found = self._field(item)
            if found is not None and found.key not in markers:
                fields.append(found)
        return fields

    def create_field(
        self, list_id: str, name: str, type: FieldType, options: Sequence[str] = ()
    ) -> DestinationField:
        if type not in CREATE_TYPES:
            raise Permanent(
                _("Ortto cannot create a field of the type %(type)s.") % {"type": str(type)}
            )
        values = list(options) if type in (FieldType.SINGLE_SELECT, FieldType.MULTI_SELECT) else []
        created = self.client.create_custom_field(name, CREATE_TYPES[type], values)
        found = self._field(
            {
                "id": created.get("field_id"),
                "name": created.get("name") or name,
                "display_type": created.get("display_type") or CREATE_TYPES[type],
                "dic_items": created.get("values") or values,
            }
        )
        if found is None:
            raise Permanent(_("Ortto did not say which field it created."))
        return found

    def prepare(
        self,
        list_id: str,
        fields: Sequence[DestinationField],
        options: SendOptions = DEFAULT_SEND_OPTIONS,
    ) -> None:
        super().prepare(list_id, fields, options)
        with contextlib.suppress(RateLimited, Transient):
            self._marker(list_id)
            if any(not item.builtin for item in fields):
                listed = self.list_fields(list_id)
                self.fields_by_key = fields_at_service("Ortto", list_id, listed, fields)

    def convert(self, field: DestinationField, value: object) -> tuple[object, str | None]:
        """Text (255 characters, 4000 in a large text field), a whole number (decimal,
        currency and price fields in thousandths, as Ortto holds them), yes/no as true or
        false, a date as ``{"year","month","day","timezone"}``, a date-time in ISO 8601
        (UTC), one or several of a select field's values."""
        if field.type == FieldType.NUMBER:
            number = as_number(value)
            if field.key in self._thousandths:
                return int((number * 1000).to_integral_value()), None
            if number != number.to_integral_value():
                raise ValueError(
                    _("%(value)s is not a whole number, and %(field)s takes only those.")
                    % {"value": as_text(value), "field": field.name}
                )
            return int(number), None
        if field.type == FieldType.BOOLEAN:
            return as_bool(value), None
        if field.type == FieldType.DATE:
            day = as_date(value)
            return {"year": day.year, "month": day.month, "day": day.day, "timezone": "UTC"}, None
        if field.type == FieldType.DATETIME:
            return as_datetime(value).isoformat().replace("+00:00", "Z"), None
        if field.type == FieldType.SINGLE_SELECT:
            return as_option(field, value), None
        if field.type == FieldType.MULTI_SELECT:
            return as_options(field, value), None
        return fitted(field, as_text(value))

    def preview(self, record: Record) -> list[tuple[str, str]]:
        marker = self._markers.get(self.prepared_list_id, "")
        fields, tags, failure, _warnings = self._person(record, marker)
        rows = [(gettext("Email address"), record.email)]
        if failure is not None:
            return [*rows, (gettext("Error"), str(failure.message))]
        names = {item.key: item.name for item in self.fields_by_key.values()}
        names.update({"str::first": gettext("First name"), "str::last": gettext("Last name")})
        for key, value in fields.items():
            if key != "str::email":
                rows.append((f"{names.get(key, key)} ({key})", preview_value(value)))
        if tags[0]:
            rows.append((gettext("Tags added"), ", ".join(tags[0])))
        if tags[1]:
            rows.append((gettext("Tags taken off"), ", ".join(tags[1])))
        consent = self.consent_for(record)
        rows.append(
            (
                str(self.consent_field_label),
                gettext("%(permission)s for new people; unchanged for others")
                % {"permission": gettext("yes") if consent else gettext("no")},
            )
        )
        return rows

    def push(self, list_id: str, batch: Sequence[Record]) -> PushResult:
        self._check_batch(batch)
        if not batch:
            return PushResult(accepted=0)
        marker = self._marker(list_id)
        # Returning people whose email permission is off are not sent: they stay as they are.
        returning = [record.email for record in batch if record.returning]
        permissions = self.client.email_permissions(returning) if returning else {}
        refused = {email for email, allowed in permissions.items() if not allowed}
        failures = [
            RecordFailure(
                record.email,
                OPTED_OUT_CODE,
                _(
                    "Ortto holds this person without email permission: only they can "
                    "subscribe again, so they were not sent."
                ),
            )
            for record in batch
            if record.email.lower() in refused
        ]
        sending: list[Record] = []
        people: list[dict[str, Any]] = []
        tags: list[tuple[list[str], list[str]]] = []
        warnings: list[RecordWarning] = []
        for record in batch:
            if record.email.lower() in refused:
                continue
            fields, person_tags, failure, shortened_values = self._person(record, marker)
            if failure is not None:
                failures.append(failure)
                continue
            sending.append(record)
            people.append(fields)
            tags.append(person_tags)
            warnings += shortened_values
        if not sending:
            return PushResult(accepted=0, failures=failures)
        # People Ortto already holds are merged without any permission field, so an opt-out
        # stays as it is (§6); the new ones (left out of that merge) are then created with
        # the export's permission, which Ortto would otherwise set to yes (§9).
        replies = self.client.merge(people, skip_non_existing=True, tags=tags)
        new = [n for n, reply in enumerate(replies) if str(reply.get("status")) == "ignored"]
        if new:
            created = self.client.merge(
                [{**people[n], "bol::p": bool(self.consent_for(sending[n]))} for n in new],
                tags=[tags[n] for n in new],
            )
            for n, reply in zip(new, created, strict=False):
                replies[n] = reply
        result = self._result(batch_emails(sending), replies)
        result.failures[:0] = failures
        result.accepted = len(batch) - len(result.failures)
        failed = {failure.email.lower() for failure in result.failures}
        result.warnings = [w for w in warnings if w.email.lower() not in failed]
        return result

    def _person(
        self, record: Record, marker: str
    ) -> tuple[
        dict[str, Any], tuple[list[str], list[str]], RecordFailure | None, list[RecordWarning]
    ]:
        """The record's fields and tags as merged, or the failure of a value."""
        converted = convert_record(self, record)
        if converted.failure is not None:
            return {}, ([], []), converted.failure, []
        # No permission fields here: merging data leaves an opt-out as it is (§6).
        fields: dict[str, Any] = {"str::email": record.email}
        if marker:
            fields[marker] = True
        if record.first_name:
            fields["str::first"] = shortened(record.first_name, MAX_TEXT)
        if record.last_name:
            fields["str::last"] = shortened(record.last_name, MAX_TEXT)
        for field, value in converted.values:
            fields[field.key] = value  # None clears (merge_strategy 2)
        added = list(dict.fromkeys(record.tags))
        lowered = {tag.lower() for tag in added}
        # Never the same tag in both: Ortto's order between them is not fixed (§9).
        unset = [tag for tag in dict.fromkeys(record.removed_tags) if tag.lower() not in lowered]
        return fields, (added, unset), None, converted.warnings

    def _field(self, item: Any) -> DestinationField | None:
        field_id = str(item.get("id") or "")
        display_type = str(item.get("display_type") or "")
        field_type = FIELD_TYPES.get(display_type) or PREFIX_TYPES.get(field_id.split(":")[0])
        if not field_id or field_type is None:
            return None  # phones, objects: not a value a profile field maps to
        if display_type in THOUSANDTHS:
            self._thousandths.add(field_id)
        length = MAX_LARGE_TEXT if display_type == "large_text" else MAX_TEXT
        return DestinationField(
            key=field_id,
            name=str(item.get("name") or field_id),
            type=field_type,
            max_length=length if field_type == FieldType.TEXT else None,
            options=tuple(str(value) for value in item.get("dic_items") or ()),
        )

    def remove(self, list_id: str, emails: Sequence[str]) -> PushResult:
        """Clear the marker: the audience's filter drops them. Nobody is archived, and
        addresses Ortto does not know are not created. Those whose email permission is off
        are reported as opted out: should Ortto lose the person (archived or deleted there),
        a return must not create them again with the default permission."""
        self._check_batch(emails, self.removal_batch_size)
        if not emails:
            return PushResult(accepted=0)
        marker = self._marker(list_id)
        permissions = self.client.email_permissions(emails)
        people = [{"str::email": email, marker: False} for email in emails]
        result = self._result(list(emails), self.client.merge(people, skip_non_existing=True))
        refused = {failure.email.lower() for failure in result.failures}
        result.opted_out = [
            email
            for email in emails
            if permissions.get(email.lower()) is False and email.lower() not in refused
        ]
        return result

    def erase(self, list_id: str, email: str) -> None:
        """Archive, then delete the person (Ortto deletes only archived people): they go from
        the whole account, not only from this audience's marker."""
        key = email.strip().lower()
        person_id = self._erasing.get(key) or self.client.find_person_id(email)
        if not person_id:
            return  # Ortto holds no one (not archived) with this address
        self._erasing[key] = person_id  # a retry after the archive finds them by id only
        self.client.archive([person_id])
        self.client.delete([person_id])

    # Consent read-back (ortto_api.md §10) ----------------------------------------------------

    reads_consent = True

    def read_consent(
        self, lists: Sequence[str], *, since: datetime | None, cursor: str | None = None
    ) -> ConsentPage:
        """One page (500) of who may not be emailed, account-wide (``list_id`` ""): first every
        person whose email permission is off (unsubscribed; Ortto keeps no date for it), then
        every address on the email suppression list (bounces, complaints, manual: suppressed,
        with the entry's reason and date when it carries them).

        Ortto has no "since" read of permission changes (§10), so every read reads both sets
        in full and ``since`` is ignored; so are ``lists``, which Ortto's permission and
        suppression list do not depend on. The cursor is compact JSON naming the stream and
        the offset."""
        stream, offset = (0, 0) if cursor is None else _parse_consent_cursor(cursor)
        if CONSENT_STREAMS[stream] == "permission-off":
            items, following, more = self.client.people_without_permission(offset=offset)
            events = [_permission_off(item) for item in items]
        else:
            items, following, more = self.client.suppressed_page(offset=offset)
            events = [_suppressed(item) for item in items]
        if not more:
            stream, following = stream + 1, 0
        found = [event for event in events if event is not None]
        if stream == len(CONSENT_STREAMS):
            return ConsentPage(found, None)
        position = {"stream": CONSENT_STREAMS[stream], "offset": following}
        return ConsentPage(found, _compact(position))

    # Helpers -------------------------------------------------------------------------------

    def _marker(self, audience_id: str) -> str:
        if not self._markers.get(audience_id):
            audience = next(
                (a for a in self.client.audiences() if str(a.get("id")) == audience_id), None
            )
            if audience is None:
                raise ListNotFound(service="Ortto", list_id=audience_id, status=404)
            self._markers[audience_id] = marker_of(audience)
        if not self._markers[audience_id]:
            raise Permanent(_NO_MARKER_ERROR % {"name": audience_id})
        return self._markers[audience_id]

    @staticmethod
    def _result(emails: list[str], people: list[dict[str, Any]]) -> PushResult:
        failures = []
        for position, email in enumerate(emails):
            person = people[position] if position < len(people) else {}
            status = str(person.get("status") or "")
            if status in DONE:
                continue
            error = person.get("error")
            code = str(error.get("code") or "error") if isinstance(error, dict) else "error"
            message = (
                str(error.get("message") or code) if isinstance(error, dict) else str(error or "")
            )
            failures.append(
                RecordFailure(email, code, message or _("Ortto did not accept this person."))
            )
        return PushResult(accepted=len(emails) - len(failures), failures=failures)


def batch_emails(batch: Sequence[Record]) -> list[str]:
    return [record.email for record in batch]


def _parse_consent_cursor(cursor: str) -> tuple[int, int]:
    try:
        position = json.loads(cursor)
        stream = CONSENT_STREAMS.index(position["stream"])
        offset = int(position["offset"])
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError("This is not a cursor of an Ortto consent read.") from error
    if offset < 0:
        raise ValueError("This is not a cursor of an Ortto consent read.")
    return stream, offset


def _permission_off(person: Mapping[str, Any]) -> ConsentEvent | None:
    fields = person.get("fields")
    fields = fields if isinstance(fields, Mapping) else {}
    email = str(fields.get("str::email") or "").strip()
    if not email or fields.get("bol::p") is True:
        return None  # no address, or the permission is on (the filter would not give one)
    return ConsentEvent(email, ConsentState.PERMISSION_OFF)


def _suppressed(entry: Mapping[str, Any]) -> ConsentEvent | None:
    email = str(entry.get("email") or "").strip()
    if not email:
        return None
    moment = None
    for key in ("date", "created_at", "suppressed_at", "created"):
        moment = _when(entry.get(key))
        if moment is not None:
            break
    reason = str(entry.get("reason") or "")[:MAX_REASON]
    return ConsentEvent(email, ConsentState.SUPPRESSED, moment, "", reason)


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_NO_MARKER_NOTE = _("its filter uses no Yes/No custom field: not usable yet")
_NO_MARKER_ERROR = _(
    "The Ortto audience %(name)s does not filter on a Yes/No custom field, so the export cannot "
    "put people in it. In Ortto, create a Yes/No custom field, make the audience's filter "
    "“that field is true”, then run the export again."
)


def _compact(position: Mapping[str, object]) -> str:
    """A cursor: JSON without spaces, other alphabets kept (the cursor's limit is characters)."""
    return json.dumps(position, separators=(",", ":"), ensure_ascii=False)
