"""Autopilot as an export destination: an API key, bulk upserts of up to 100 contacts."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from connections.types.autopilot.client import (
    MAX_BULK,
    AutopilotClient,
    custom_key,
)
from connections.types.autopilot.forms import AutopilotCredentialsForm
from connections.types.base import (
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
    Record,
    RecordFailure,
    RecordWarning,
    StepResult,
    StepSkipped,
    run_steps,
)
from connections.types.values import (
    as_bool,
    as_date,
    as_number,
    as_text,
    builtin_fields,
    convert_record,
    fitted,
    preview_value,
)

#: Delivery events after which the contact is not mailed again (autopilot_api.md §8).
DO_NOT_MAIL_EVENTS = ("mail_unsubscribed", "mail_hardbounced", "mail_complained")
#: The code of a returning contact found opted out before being sent again.
OPTED_OUT_CODE = "unsubscribed"
#: Autopilot's custom field types as ours, and the type a field of ours is created with.
FIELD_TYPES = {
    "string": FieldType.TEXT,
    "integer": FieldType.NUMBER,
    "float": FieldType.NUMBER,
    "date": FieldType.DATE,
    "boolean": FieldType.BOOLEAN,
}
CREATE_TYPES = {
    FieldType.TEXT: "string",
    FieldType.NUMBER: "float",
    FieldType.DATE: "date",
    FieldType.BOOLEAN: "boolean",
}


#: What each delivery event that stops mailing is (§8); ``mail_bounced`` (soft) is not one.
CONSENT_EVENTS = {
    "mail_unsubscribed": ConsentState.UNSUBSCRIBED,
    "mail_hardbounced": ConsentState.BOUNCED,
    "mail_complained": ConsentState.COMPLAINED,
}
#: How far before ``since`` a read-back keeps contacts. ``updated_at`` and the events' times
#: are Autopilot's clock and ``since`` is ours, and an event may be written a little after the
#: time it carries (the service records deliveries as it processes them): an hour covers both
#: with room to spare. Autopilot cannot filter, so every contact is paged whatever the overlap:
#: a wider one costs no calls, only events the caller already has and drops.
CONSENT_OVERLAP = timedelta(hours=1)


def service_time(value: Any) -> datetime | None:
    """An ISO 8601 time as Autopilot writes it ("2016-12-20T08:10:00.000Z"), or None."""
    try:
        parsed = datetime.fromisoformat(str(value or "").strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def latest_event(events: Any) -> datetime | None:
    """The latest of a ``mail_*`` object's epoch-millisecond values, or None."""
    values = events.values() if isinstance(events, Mapping) else events
    if not isinstance(values, Iterable) or isinstance(values, str | bytes):
        return None
    stamps = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not stamps:
        return None
    try:
        return datetime.fromtimestamp(max(stamps) / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def consent_events(contact: Mapping[str, Any], oldest: datetime | None) -> list[ConsentEvent]:
    """The contact's reasons not to be mailed, one event per state, when the contact changed
    or had one of its events at or after ``oldest`` (None: whenever). A contact without an
    address gives none: there is no one to record them for."""
    email = str(contact.get("Email") or "")
    if not email:
        return []
    found: dict[ConsentState, datetime | None] = {}
    if contact.get("unsubscribed") is True:
        found[ConsentState.UNSUBSCRIBED] = None  # the flag carries no time
    for key, state in CONSENT_EVENTS.items():
        if contact.get(key):
            at = latest_event(contact[key])
            earlier = found.get(state)
            found[state] = max(at, earlier) if at and earlier else at or earlier
    if not found:
        return []
    if oldest is not None:
        # updated_at is the filter the contract names; an event's own time counts as well, in
        # case a delivery event leaves updated_at alone.
        times = [at for at in found.values() if at is not None]
        updated = service_time(contact.get("updated_at"))
        times += [updated] if updated is not None else []
        if times and max(times) < oldest:
            return []
    return [ConsentEvent(email=email, state=state, occurred_at=at) for state, at in found.items()]


def opted_out(contact: Mapping[str, Any] | None) -> bool:
    """Whether the contact unsubscribed, bounced hard or complained."""
    if not contact:
        return False
    return contact.get("unsubscribed") is True or any(
        contact.get(event) for event in DO_NOT_MAIL_EVENTS
    )


class AutopilotBackend(Backend):
    label = gettext_lazy("Autopilot")
    list_hint = gettext_lazy(
        "Autopilot: leave List ID empty and name a list here. Saving creates it in the account, "
        "or uses the account's list of that name if there is one."
    )
    fields_hint = gettext_lazy(
        "Autopilot receives the first and last name as FirstName and LastName."
    )
    icon = "img/connections/autopilot.svg"
    help_template = "connections/autopilot/_help.html"
    batch_size = MAX_BULK
    #: A removal reads the contact, then takes it off the list: each ``remove`` takes one
    #: token of the 5 calls a second, so one address per call (a 429 is waited out).
    removal_batch_size = 1
    #: Autopilot accepts at most 100,000 profiles in total per export (product.md, E5).
    max_profiles = 100_000
    #: A returning contact who unsubscribed (read before sending: ``push``).
    opted_out_codes = frozenset({OPTED_OUT_CODE})
    #: A value that cannot be converted for its field: sent again once the data changes.
    lasting_refusal_codes = frozenset({INVALID_VALUE})
    credentials_form_class = AutopilotCredentialsForm
    creates_lists = True
    creatable_field_types = frozenset(CREATE_TYPES)
    #: Every contact's unsubscribe flag and delivery events, paged account-wide (§8).
    reads_consent = True

    credentials_rejected_message = _("Autopilot rejected this API key. Check it and try again.")

    def __init__(self, store, *, client: AutopilotClient | None = None):
        super().__init__(store)
        self.client = client or AutopilotClient(store)

    @property
    def rate_limit(self) -> float:  # type: ignore[override]
        """Requests per second per API key: Autopilot documents 5; a setting, for benchmarks."""
        return settings.AUTOPILOT_RATE_LIMIT

    def authenticate(self) -> None:
        self.client.lists()

    def test(self) -> list[StepResult]:
        found: dict[str, Any] = {}

        def credentials() -> str:
            found["lists"] = self.list_destinations()
            return _("Autopilot accepted the API key.")

        def lists() -> str:
            if not found["lists"]:
                return _("No lists found. Create a list in Autopilot before adding an export.")
            return _("Found %(count)d lists.") % {"count": len(found["lists"])}

        def members() -> str:
            if not found["lists"]:
                raise StepSkipped(_("There is no list to read. Create a list in Autopilot."))
            first = found["lists"][0]
            next(iter(self.client.list_contacts(first.id)), None)
            return _("Read the contacts of the list “%(name)s”.") % {"name": first.name}

        return run_steps(
            [
                (_("API key accepted"), credentials),
                (_("Lists readable"), lists),
                (_("List contacts readable"), members),
            ],
            skip_message=_("Skipped: fix the failed step above first."),
        )

    def list_destinations(self) -> list[DestinationList]:
        return [
            DestinationList(id=str(item.get("list_id")), name=str(item.get("title", "")))
            for item in self.client.lists()
        ]

    def create_destination(self, name: str) -> DestinationList:
        return DestinationList(id=str(self.client.find_or_create_list(name)), name=name)

    def list_fields(self, list_id: str) -> list[DestinationField]:
        """The builtins, then the account's custom fields (Autopilot's are per account, not
        per list): one per name and type, keyed ``<type>--<Name>``."""
        fields = builtin_fields()
        for item in self.client.custom_fields():
            field_type = str(item.get("fieldType") or "")
            name = str(item.get("name") or "").strip()
            if name and field_type in FIELD_TYPES:
                fields.append(
                    DestinationField(custom_key(field_type, name), name, FIELD_TYPES[field_type])
                )
        return fields

    def create_field(
        self, list_id: str, name: str, type: FieldType, options: Sequence[str] = ()
    ) -> DestinationField:
        """Autopilot has no call that creates a field: the first contact sent with a value
        for ``<type>--<Name>`` creates it (§7). So this makes no call: it returns the field
        with the key that will create it, and it is listed once a value was sent."""
        if type not in CREATE_TYPES or not name.strip():
            raise Permanent(
                _("Autopilot cannot create a field of the type %(type)s.") % {"type": str(type)}
            )
        return DestinationField(custom_key(CREATE_TYPES[type], name), name.strip(), type)

    def convert(self, field: DestinationField, value: object) -> tuple[object, str | None]:
        """Text as a string, an integer field's whole number, a float field's number, yes/no
        as true or false, a date as ISO 8601 (midnight UTC, as Autopilot reads it back)."""
        field_type = field.key.split("--", 1)[0]
        if field.type == FieldType.NUMBER:
            number = as_number(value)
            if field_type == "float":
                return float(number), None
            if number != number.to_integral_value():
                raise ValueError(
                    _("%(value)s is not a whole number, and %(field)s takes only those.")
                    % {"value": as_text(value), "field": field.name}
                )
            return int(number), None
        if field.type == FieldType.BOOLEAN:
            return as_bool(value), None
        if field.type in (FieldType.DATE, FieldType.DATETIME):
            return f"{as_date(value).isoformat()}T00:00:00.000Z", None
        return fitted(field, as_text(value))

    def preview(self, record: Record) -> list[tuple[str, str]]:
        contact, failure, _warnings = self._contact(record, self.prepared_list_id)
        rows = [(gettext("Email address"), record.email)]
        if failure is not None:
            return [*rows, (gettext("Error"), str(failure.message))]
        names = {item.key: item.name for item in self.fields_by_key.values()}
        for key in ("FirstName", "LastName"):
            if key in contact:
                rows.append((key, contact[key]))
        for key, value in (contact.get("custom") or {}).items():
            rows.append((f"{names.get(key, key)} ({key})", preview_value(value)))
        return rows

    def push(self, list_id: str, batch: Sequence[Record]) -> PushResult:
        self._check_batch(batch)
        if not batch:
            return PushResult(accepted=0)
        # A returning contact may have been deleted at Autopilot since it left, and a new
        # contact is subscribed: those who opted out are read first and never sent.
        refused = [
            RecordFailure(
                email=record.email,
                code=OPTED_OUT_CODE,
                message=_(
                    "Autopilot holds this contact as unsubscribed: only they can subscribe "
                    "again, so they were not sent."
                ),
            )
            for record in batch
            if record.returning and opted_out(self.client.contact(record.email))
        ]
        skipped = {failure.email.lower() for failure in refused}
        contacts: list[dict[str, Any]] = []
        sending: list[Record] = []
        warnings: list[RecordWarning] = []
        for record in batch:
            if record.email.lower() in skipped:
                continue
            contact, failure, shortened = self._contact(record, list_id)
            if failure is not None:
                refused.append(failure)
                continue
            contacts.append(contact)
            sending.append(record)
            warnings += shortened
        reply = self.client.upsert_contacts(contacts, list_id=list_id)
        mapped = reply.get("email_contact_map")
        if not isinstance(mapped, dict):
            # Older replies carry only contact_ids: a 200 means every contact was taken.
            return PushResult(accepted=len(sending), failures=refused, warnings=warnings)
        known = {str(email).lower() for email in mapped}
        failures = refused + [
            RecordFailure(
                email=record.email,
                code="not_accepted",
                message=_("Autopilot did not accept this contact."),
            )
            for record in sending
            if record.email.lower() not in known
        ]
        failed = {failure.email.lower() for failure in failures}
        return PushResult(
            accepted=len(batch) - len(failures),
            failures=failures,
            warnings=[warning for warning in warnings if warning.email.lower() not in failed],
        )

    def remove(self, list_id: str, emails: Sequence[str]) -> PushResult:
        """Take leavers off the list (the contact stays in the account). Whether they opted
        out is read first and reported: the export remembers it, so that a contact deleted at
        Autopilot meanwhile is not created again, subscribed, when they return."""
        self._check_batch(emails, self.removal_batch_size)
        failures = []
        unsubscribed = []
        for email in emails:
            try:
                contact = self.client.contact(email)
                if contact is None:
                    continue  # not in the account, so on no list
                if opted_out(contact):
                    unsubscribed.append(email)
                self.client.remove_from_list(list_id, email)
            except ListNotFound:
                raise  # the list itself is gone: the export must stop
            except Permanent as error:
                failures.append(RecordFailure(email, str(error.code or ""), error.message))
        return PushResult(
            accepted=len(emails) - len(failures), failures=failures, opted_out=unsubscribed
        )

    def erase(self, list_id: str, email: str) -> None:
        """``DELETE /contact/{email}``: the contact goes from the account, not only the list."""
        self.client.delete_contact(email)

    def read_consent(
        self, lists: Sequence[str], *, since: datetime | None, cursor: str | None = None
    ) -> ConsentPage:
        """One page of 100 contacts of the whole account (``lists`` are not needed: an
        unsubscribe holds account-wide, so every event has the list id ""), keeping those who
        unsubscribed, bounced hard or complained and changed at most ``CONSENT_OVERLAP``
        before ``since``. The cursor holds Autopilot's bookmark; one call, one request,
        spaced to the service's 5 requests a second."""
        if len(lists) > self.max_consent_lists:
            raise ValueError(f"A read-back covers at most {self.max_consent_lists} lists.")
        bookmark = None
        if cursor:
            try:
                position = json.loads(cursor)
                bookmark = str(position["b"])
                since = datetime.fromisoformat(position["s"]) if position["s"] else None
            except (ValueError, TypeError, KeyError) as error:
                raise ValueError(f"Not an Autopilot consent cursor: {cursor[:100]!r}") from error
        elif since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        self._pace()
        body = self.client.contacts_page(bookmark)
        contacts = [item for item in body.get("contacts") or [] if isinstance(item, Mapping)]
        oldest = None if since is None else since - CONSENT_OVERLAP
        events = [event for contact in contacts for event in consent_events(contact, oldest)]
        following = body.get("bookmark")
        if not contacts or not following or following == bookmark:
            return ConsentPage(events=events, cursor=None)
        position = {"b": str(following), "s": since.isoformat() if since else None}
        return ConsentPage(events=events, cursor=json.dumps(position, separators=(",", ":")))

    #: When each API key (by its digest) may make its next read-back request, in this process.
    _next_reads: ClassVar[dict[str, float]] = {}
    _reads_lock: ClassVar[threading.Lock] = threading.Lock()

    def _pace(self) -> None:
        """Wait for the API key's next request slot: at most ``rate_limit`` read-back requests
        a second from this process, whichever backend makes them (a read may build a new
        backend for each page). Pushes take their slots from the engine's shared limiter; a
        caller may do the same for reads, one slot per call."""
        rate = self.rate_limit
        if not rate:
            return
        key = hashlib.sha256(str(self.store.load().get("api_key") or "").encode()).hexdigest()
        with self._reads_lock:
            now = time.monotonic()
            start = max(now, self._next_reads.get(key, now))
            self._next_reads[key] = start + 1 / rate
        if start > now:
            time.sleep(start - now)

    def _contact(
        self, record: Record, list_id: str
    ) -> tuple[dict[str, Any], RecordFailure | None, list[RecordWarning]]:
        """The record as a contact to upsert, or the failure of a value. ``unsubscribed`` is
        never sent: absent, Autopilot keeps the contact's own (§7)."""
        converted = convert_record(self, record)
        if converted.failure is not None:
            return {}, converted.failure, []
        contact: dict[str, Any] = {"Email": record.email, "_autopilot_list": list_id}
        if record.first_name:
            contact["FirstName"] = record.first_name
        if record.last_name:
            contact["LastName"] = record.last_name
        custom = {field.key: value for field, value in converted.values}  # None clears
        if custom:
            contact["custom"] = custom
        return contact, None, converted.warnings
