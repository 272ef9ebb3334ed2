"""Campaign Monitor as an export destination: OAuth 2, imports of up to 1,000 subscribers."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any

from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from config.text import shortened
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
from connections.types.campaign_monitor.client import (
    MAX_IMPORT,
    MAX_PAGE_SIZE,
    OPT_OUT_KINDS,
    SERVICE,
    CampaignMonitorClient,
    ScopeMissing,
    ci_get,
)
from connections.types.campaign_monitor.forms import CampaignMonitorCredentialsForm
from connections.types.values import (
    as_date,
    as_number,
    as_option,
    as_options,
    as_text,
    builtin_fields,
    convert_record,
    fields_at_service,
    fitted,
    number_text,
    preview_value,
)

logger = logging.getLogger(__name__)

CODE_NOT_IN_LIST = 203
#: Invalid CampaignID: the legacy API's code, which the contract does not give (§11).
CODE_INVALID_CAMPAIGN = 301
FIELD_VALUE_REFUSED = "253"  # an import's FailureDetails code: a custom field value refused
CODE_IS_DELETED = "205"  # an import's FailureDetails code: deleted from the list
#: A subscriber's states that mean the person opted out (or bounced), with the import's code
#: for each: only the person can subscribe again.
OPTED_OUT_STATES = {"unsubscribed": "206", "bounced": "207"}
#: Campaign Monitor keeps at most 250 characters of a name or custom field value (spec §3).
MAX_VALUE_LENGTH = 250
#: Campaign Monitor's field types (``DataType``) as ours, and back for creating one.
FIELD_TYPES = {
    "text": FieldType.TEXT,
    "number": FieldType.NUMBER,
    "date": FieldType.DATE,
    "multiselectone": FieldType.SINGLE_SELECT,
    "multiselectmany": FieldType.MULTI_SELECT,
    "country": FieldType.COUNTRY,
    "usstate": FieldType.SINGLE_SELECT,
}
DATA_TYPES = {
    FieldType.TEXT: "Text",
    FieldType.NUMBER: "Number",
    FieldType.DATE: "Date",
    FieldType.SINGLE_SELECT: "MultiSelectOne",
    FieldType.MULTI_SELECT: "MultiSelectMany",
    FieldType.COUNTRY: "Country",
}
#: The dates a Date field takes (spec §3).
FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(2076, 6, 6)
#: ConsentToTrack for a person new to the list, by the consent the export gives them.
CONSENT = {True: "Yes", False: "No"}

# Consent read-back (campaign_monitor_api.md §11) ----------------------------------------------

#: How far before ``since`` a read starts: dates carry no zone (we read them in the client's
#: time zone, which may be wrong by its daylight saving or be another zone altogether) and the
#: lists' date filter takes whole days.
CONSENT_OVERLAP = timedelta(days=1)
#: The list reads, and what their people are; then each client's suppression list.
LIST_CONSENT_STATES = {
    "unsubscribed": ConsentState.UNSUBSCRIBED,
    "bounced": ConsentState.BOUNCED,
}
SUPPRESSION_LIST = "suppressionlist"
#: Each client's campaigns, and the spam complaints about each (§11: no list read has them).
COMPLAINTS = "complaints"
#: Complaints come in after a campaign was sent, most within days: a read looks at the
#: campaigns sent up to this long before its ``since`` (less the overlap), and at complaints
#: about them since then. A complaint about an older campaign is missed here, but Campaign
#: Monitor unsubscribes and suppresses the person too (§11), which the other reads find.
COMPLAINTS_AFTER_SENDING = timedelta(days=30)
#: The longest reason a ``ConsentEvent`` keeps.
MAX_REASON = 200
#: The most unsubscribed and bounced people of a list that a removal pass keeps in memory
#: (50,000 addresses take about 7 MB): a list with more has each leaver's state read instead.
MAX_KNOWN_OPT_OUTS = 50_000
_TIME_ZONE = re.compile(r"\(\s*(?:GMT|UTC)\s*(?:([+-])\s*(\d{1,2})(?::?(\d{2}))?)?\s*\)", re.I)


def client_time_zone(text: str) -> tzinfo:
    """The fixed offset a client's ``TimeZone`` names: "(GMT+10:00) Canberra, Melbourne,
    Sydney" is UTC+10, "(GMT) London" is UTC. Anything else is read as UTC (the read's
    overlap of a day covers a wrong guess)."""
    found = _TIME_ZONE.search(text or "")
    if found is None or not found.group(1):
        return UTC
    hours, minutes = int(found.group(2)), int(found.group(3) or 0)
    if hours > 14 or minutes >= 60:
        return UTC
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if found.group(1) == "-" else offset)


def service_time(text: Any, zone: tzinfo) -> datetime | None:
    """A date as the service writes it ("2010-10-25 13:04:00", no zone) in ``zone``; None when
    it is missing or unreadable."""
    try:
        parsed = datetime.fromisoformat(str(text or "").strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def suppression_state(reason: str) -> ConsentState:
    """What a ``SuppressionReason`` means: only "Unsubscribed" is documented (§11); a reason
    naming a complaint or a bounce is taken at its word, anything else is a suppression."""
    lowered = reason.lower()
    if "unsubscrib" in lowered:
        return ConsentState.UNSUBSCRIBED
    if "complain" in lowered or "spam" in lowered:
        return ConsentState.COMPLAINED
    if "bounce" in lowered:
        return ConsentState.BOUNCED
    return ConsentState.SUPPRESSED


@dataclass(frozen=True)
class ConsentCursor:
    """Where a read-back goes on: the ``index`` of the stream (a list's unsubscribed or bounced
    people, a client's suppression list or its campaigns' complaints, named by ``kind`` and
    ``id``) and its ``page``; ``since`` is the read's own, kept so that every page of one read
    filters alike. In the complaints, ``page`` is the page of the client's campaigns, ``at``
    the campaign's place on it, ``campaign`` its id (to find it again if campaigns before it
    were deleted) and ``spam_page`` the page of its complaints."""

    index: int
    kind: str
    id: str
    page: int
    since: datetime | None
    at: int = 0
    campaign: str = ""
    spam_page: int = 1

    def encode(self) -> str:
        data: dict[str, Any] = {
            "i": self.index,
            "k": self.kind,
            "id": self.id,
            "p": self.page,
            "s": self.since.isoformat() if self.since else None,
        }
        if self.kind == COMPLAINTS:
            data.update({"a": self.at, "c": self.campaign, "sp": self.spam_page})
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> ConsentCursor:
        try:
            data = json.loads(text)
            since = datetime.fromisoformat(data["s"]) if data["s"] else None
            cursor = cls(
                int(data["i"]),
                str(data["k"]),
                str(data["id"]),
                int(data["p"]),
                since,
                at=int(data.get("a", 0)),
                campaign=str(data.get("c", "")),
                spam_page=int(data.get("sp", 1)),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"Not a Campaign Monitor consent cursor: {text[:100]!r}") from error
        if cursor.index < 0 or cursor.page < 1 or cursor.at < 0 or cursor.spam_page < 1:
            raise ValueError(f"Not a Campaign Monitor consent cursor: {text[:100]!r}")
        return cursor


def _total_records(body: Mapping[str, Any]) -> int:
    """A paged envelope's ``TotalNumberOfRecords`` (0 when it has none)."""
    total = ci_get(body, "TotalNumberOfRecords")
    return total if isinstance(total, int) else 0


def _pages(body: Mapping[str, Any]) -> int:
    """A paged envelope's ``NumberOfPages`` (1 when it has none)."""
    pages = ci_get(body, "NumberOfPages")
    return pages if isinstance(pages, int) and pages > 0 else 1


def has_more_pages(body: Mapping[str, Any], page: int) -> bool:
    """Whether a paged envelope has pages after ``page``."""
    if not ci_get(body, "Results"):
        return False
    pages = ci_get(body, "NumberOfPages")
    if isinstance(pages, int):
        return page < pages
    return len(ci_get(body, "Results")) >= int(ci_get(body, "PageSize", MAX_PAGE_SIZE) or 1)


class CampaignMonitorBackend(Backend):
    label = gettext_lazy("Campaign Monitor")
    list_hint = gettext_lazy("Campaign Monitor: lists are shown as “Client / List”.")
    fields_hint = gettext_lazy("Campaign Monitor receives the first and last name joined as Name.")
    icon = "img/connections/campaign_monitor.svg"
    help_template = "connections/campaign_monitor/_help.html"
    batch_size = MAX_IMPORT
    #: A removal is one DELETE per address: batches of 100 keep progress moving.
    removal_batch_size = 100
    #: Campaign Monitor takes up to 1,000,000 profiles per export (product.md, E5).
    max_profiles = 1_000_000
    #: In Suppression List, Is Unsubscribed, Is Bounced (import FailureDetails codes).
    opted_out_codes = frozenset({"204", "206", "207"})
    opted_out_states = MappingProxyType(
        {"204": ConsentState.SUPPRESSED, "207": ConsentState.BOUNCED}
    )
    #: Invalid Email Address; a custom field value the list refuses (253) or that cannot be
    #: converted. Unconfirmed (208) changes when the person confirms.
    lasting_refusal_codes = frozenset({"1", FIELD_VALUE_REFUSED, INVALID_VALUE})
    rate_limit = None  # not published; slow down when the service answers 429
    credentials_form_class = CampaignMonitorCredentialsForm
    oauth = True
    authenticate_label = gettext_lazy("Authenticate with Campaign Monitor")
    #: Unsubscribed people stay unsubscribed: a refused address comes back as a failure (206).
    resubscribe = False
    creatable_field_types = frozenset(DATA_TYPES)
    consent_field_label = gettext_lazy("Consent to track")
    #: Each list's unsubscribed and bounced people, its client's suppression list and the
    #: spam complaints about the client's campaigns (§11).
    reads_consent = True

    def __init__(self, store, *, client: CampaignMonitorClient | None = None):
        super().__init__(store)
        self.client = client or CampaignMonitorClient(store)
        #: Read once per backend by ``read_consent``: each list's client, each client's zone.
        self._list_clients: dict[str, str] = {}
        self._client_zones: dict[str, tzinfo] = {}
        #: The page of each client's campaigns that the complaints are read from now:
        #: client id → ((sent_from, page), the paged envelope).
        self._campaign_pages: dict[str, tuple[tuple[str, int], Mapping[str, Any]]] = {}
        #: Read once per backend (one run) by ``remove``, per lower-cased list id: the list's
        #: unsubscribed and bounced people, or None to read each leaver's state instead.
        #: Removal batches run on several threads: one of them reads, the others wait.
        self._opt_outs: dict[str, dict[str, ConsentState] | None] = {}
        self._opt_outs_lock = threading.Lock()

    @classmethod
    def authorize_url(cls, *, redirect_uri: str, state: str) -> str:
        return CampaignMonitorClient().authorize_url(redirect_uri=redirect_uri, state=state)

    @classmethod
    def exchange_code(cls, *, code: str, redirect_uri: str) -> dict[str, Any]:
        return CampaignMonitorClient().exchange_code(code=code, redirect_uri=redirect_uri)

    def authenticate(self) -> None:
        self.client.clients()

    def test(self) -> list[StepResult]:
        found: dict[str, Any] = {}

        def credentials() -> str:
            found["clients"] = self.client.clients()
            return _("Campaign Monitor accepted this connection's authorization.")

        def lists() -> str:
            found["lists"] = self.list_destinations(clients=found["clients"])
            if not found["lists"]:
                return _(
                    "No lists found. Create a list in Campaign Monitor before adding an export."
                )
            return _("Found %(count)d lists.") % {"count": len(found["lists"])}

        def list_details() -> str:
            if not found["lists"]:
                raise StepSkipped(_("There is no list to read. Create a list in Campaign Monitor."))
            first = found["lists"][0]
            self.client.list_details(first.id)
            fields = self.client.custom_fields(first.id)
            return _("Read the settings and %(count)d custom fields of the list “%(name)s”.") % {
                "count": len(fields),
                "name": first.name,
            }

        return run_steps(
            [
                (_("Credentials accepted"), credentials),
                (_("Lists readable"), lists),
                (_("List settings readable"), list_details),
            ],
            skip_message=_("Skipped: fix the failed step above first."),
        )

    def list_destinations(self, *, clients: list[dict] | None = None) -> list[DestinationList]:
        """Every list of every client the authorization can see, named "Client / List"."""
        destinations = []
        for client in self.client.clients() if clients is None else clients:
            client_name = str(ci_get(client, "Name", ""))
            for item in self.client.lists(str(ci_get(client, "ClientID"))):
                name = str(ci_get(item, "Name", ""))
                destinations.append(
                    DestinationList(
                        id=str(ci_get(item, "ListID")),
                        name=f"{client_name} / {name}" if client_name else name,
                    )
                )
        return destinations

    def list_fields(self, list_id: str) -> list[DestinationField]:
        return builtin_fields(MAX_VALUE_LENGTH) + [
            self._field(item) for item in self.client.custom_fields(list_id)
        ]

    def create_field(
        self, list_id: str, name: str, type: FieldType, options: Sequence[str] = ()
    ) -> DestinationField:
        if type not in DATA_TYPES:
            raise Permanent(
                _("Campaign Monitor cannot create a field of the type %(type)s.")
                % {"type": str(type)}
            )
        multi = type in (FieldType.SINGLE_SELECT, FieldType.MULTI_SELECT)
        key = self.client.create_custom_field(
            list_id, name, data_type=DATA_TYPES[type], options=list(options) if multi else []
        )
        created = next(
            (item for item in self.list_fields(list_id) if item.key.lower() == key.lower()), None
        )
        return created or DestinationField(
            key, name, type, MAX_VALUE_LENGTH if type == FieldType.TEXT else None, tuple(options)
        )

    def prepare(
        self,
        list_id: str,
        fields: Sequence[DestinationField],
        options: SendOptions = DEFAULT_SEND_OPTIONS,
    ) -> None:
        """Check that the list still exists and has every mapped custom field, and take their
        types and options as Campaign Monitor defines them now: a list or field deleted there
        fails the run before the first import."""
        super().prepare(list_id, fields, options)
        # Unreachable now, the run goes on with the mapped fields as saved: a field gone since
        # then fails each record instead of the run.
        with contextlib.suppress(RateLimited, Transient):
            listed = self.list_fields(list_id)
            self.fields_by_key = fields_at_service("Campaign Monitor", list_id, listed, fields)

    def convert(self, field: DestinationField, value: object) -> tuple[object, str | None]:
        """Text (at most 250 characters), a number as decimal text, a date as YYYY/MM/DD
        between 1900/01/01 and 2076/06/06, one option or a list of options (each sent as its
        own entry under the same key) exactly as the list names them."""
        if field.type == FieldType.NUMBER:
            return number_text(as_number(value)), None
        if field.type in (FieldType.DATE, FieldType.DATETIME):
            day = as_date(value)
            if not FIRST_DATE <= day <= LAST_DATE:
                raise ValueError(
                    _("%(date)s is outside the dates Campaign Monitor takes (1900 to 2076).")
                    % {"date": day.isoformat()}
                )
            return day.strftime("%Y/%m/%d"), None
        if field.type in (FieldType.SINGLE_SELECT, FieldType.COUNTRY):
            return as_option(field, value), None
        if field.type == FieldType.MULTI_SELECT:
            return as_options(field, value), None
        return fitted(field, as_text(value))

    def preview(self, record: Record) -> list[tuple[str, str]]:
        subscriber, failure, _warnings = self._subscriber(record, consent="?")
        if failure is not None:
            return [
                (gettext("Email address"), record.email),
                (gettext("Error"), str(failure.message)),
            ]
        rows = [(gettext("Email address"), record.email)]
        if "Name" in subscriber:
            rows.append((gettext("Name"), subscriber["Name"]))
        names = {item.key: item.name for item in self.fields_by_key.values()}
        for entry in subscriber["CustomFields"]:
            shown = "" if entry.get("Clear") else entry["Value"]
            rows.append((names.get(entry["Key"], entry["Key"]), preview_value(shown or None)))
        rows.append((str(self.consent_field_label), self._preview_consent(record)))
        return rows

    def push(self, list_id: str, batch: Sequence[Record]) -> PushResult:
        self._check_batch(batch)
        if not batch:
            return PushResult(accepted=0)
        # Each record's mapped values converted first: a value Campaign Monitor cannot take
        # fails its record alone, and nothing of that record is sent.
        subscribers: dict[str, dict[str, Any]] = {}
        failures: list[RecordFailure] = []
        warnings: list[RecordWarning] = []
        for record in batch:
            subscriber, failure, shortened_values = self._subscriber(
                record, consent=self._consent(record)
            )
            if failure is not None:
                failures.append(failure)
                continue
            subscribers[record.email.lower()] = subscriber
            warnings += shortened_values
        sendable = [record for record in batch if record.email.lower() in subscribers]
        # Addresses deleted from the list (by a mirror run, or by someone at the service) come
        # back only with Resubscribe, else Code 205. The rest keep Resubscribe off, so that
        # people who unsubscribed stay unsubscribed.
        # Resubscribe also re-activates people who unsubscribed or bounced: each address to be
        # let in again has its state read first, and those are never sent.
        returning = [record for record in sendable if record.returning]
        staying = [record for record in sendable if not record.returning] if returning else sendable
        refused = self._import(list_id, staying, subscribers, resubscribe=self.resubscribe)
        deleted = {f.email.lower() for f in refused if f.code == CODE_IS_DELETED}
        if deleted:
            refused = [failure for failure in refused if failure.email.lower() not in deleted]
            returning += [record for record in staying if record.email.lower() in deleted]
        opted_out = self._opted_out(list_id, returning)
        refused += opted_out
        out = {failure.email.lower() for failure in opted_out}
        returning = [record for record in returning if record.email.lower() not in out]
        refused += self._import(list_id, returning, subscribers, resubscribe=True)
        failures += refused
        failed = {failure.email.lower() for failure in refused}
        return PushResult(
            accepted=len(batch) - len(failures),
            failures=failures,
            warnings=[warning for warning in warnings if warning.email.lower() not in failed],
        )

    def _consent(self, record: Record) -> str:
        """ConsentToTrack to send (§10): the export's consent for a person new to the list,
        "Unchanged" for everyone else and when the export gives none (a new subscriber then
        gets "No"). Campaign Monitor cannot say "only if new", and who is new comes from the
        export's sync state (``Record.new_to_list``), not from a read per record: an address
        the export never sent that someone else added to the list gets the export's consent."""
        consent = self.consent_for(record)
        if consent is None or not record.new_to_list:
            return "Unchanged"
        return CONSENT[consent]

    def _preview_consent(self, record: Record) -> str:
        consent = self.consent_for(record)
        if consent is None:
            return gettext("Unchanged (No when new)")
        return gettext("%(consent)s when new, else unchanged") % {"consent": CONSENT[consent]}

    def _opted_out(self, list_id: str, records: Sequence[Record]) -> list[RecordFailure]:
        """The records whose subscriber is Unsubscribed or Bounced in the list, as refusals."""
        failures = []
        for record in records:
            state = self._state(list_id, record.email)
            if state.lower() in OPTED_OUT_STATES:
                failures.append(
                    RecordFailure(
                        record.email,
                        OPTED_OUT_STATES[state.lower()],
                        _(
                            "Campaign Monitor holds this subscriber as %(state)s: only they can "
                            "subscribe again, so they were not sent."
                        )
                        % {"state": state},
                    )
                )
        return failures

    def _state(self, list_id: str, email: str) -> str:
        """The subscriber's state in the list, or "" when the address is not in it."""
        try:
            return self.client.subscriber_state(list_id, email)
        except ListNotFound:
            raise
        except Permanent as error:
            if error.code != CODE_NOT_IN_LIST:
                raise
            return ""

    def _import(
        self,
        list_id: str,
        records: Sequence[Record],
        subscribers: dict[str, dict[str, Any]],
        *,
        resubscribe: bool,
    ) -> list[RecordFailure]:
        if not records:
            return []
        result = self.client.import_subscribers(
            list_id,
            [subscribers[record.email.lower()] for record in records],
            resubscribe=resubscribe,
        )
        return [
            RecordFailure(email=failure.email, code=failure.code, message=failure.message)
            for failure in result.failures
        ]

    def remove(self, list_id: str, emails: Sequence[str]) -> PushResult:
        """Delete leavers; those who unsubscribed or bounced are listed as opted out first (a
        deleted subscriber reads as Deleted, and Resubscribe would let them in again).

        Who unsubscribed or bounced comes from the list's own reads of them (§11), made once
        per backend, that is once per run (``_known_opt_outs``): a leaver then costs one
        DELETE, where reading its state first cost two calls. A list with too many of them
        has each leaver's state read instead. An address that is not in the list counts as
        removed either way."""
        self._check_batch(emails, self.removal_batch_size)
        known = self._known_opt_outs(list_id, len(emails))
        failures = []
        opted_out = []
        states: dict[str, ConsentState] = {}
        for email in emails:
            try:
                if known is None:
                    state = self._state(list_id, email).lower()
                    opt_out = LIST_CONSENT_STATES.get(state)
                    in_list = bool(state) and state != "deleted"
                else:
                    opt_out = known.get(email.lower())
                    in_list = True  # or the DELETE answers 203, which is as good
                if opt_out is not None:
                    opted_out.append(email)
                    if opt_out != ConsentState.UNSUBSCRIBED:
                        states[email] = opt_out
                if in_list:
                    self.client.delete_subscriber(list_id, email)
            except ListNotFound:
                raise  # the list itself is gone: the export must stop
            except Permanent as error:
                if error.code != CODE_NOT_IN_LIST:
                    failures.append(RecordFailure(email, str(error.code or ""), error.message))
        return PushResult(
            accepted=len(emails) - len(failures),
            failures=failures,
            opted_out=opted_out,
            opted_out_states=states,
        )

    def _known_opt_outs(self, list_id: str, leavers: int) -> dict[str, ConsentState] | None:
        """The list's unsubscribed and bounced people (lower-cased address: state), read in
        full the first time ``leavers`` addresses leave it: or None, to read each leaver's
        state instead, when the list holds more than ``MAX_KNOWN_OPT_OUTS`` of them or when
        reading them all would cost more calls than these leavers' reads.

        All of them, not only those since the export's last run: a member who opted out long
        ago and was never sent since is unknown to the export until it leaves. An opt-out
        made during the removal pass is missed (the list was read before it), as a per-leaver
        read missed one made between its read and the DELETE."""
        key = list_id.lower()
        with self._opt_outs_lock:
            if key not in self._opt_outs:
                if leavers <= len(OPT_OUT_KINDS):
                    return None  # their reads cost no more than the lists' first pages
                self._opt_outs[key] = self._read_opt_outs(list_id, leavers)
            return self._opt_outs[key]

    def _read_opt_outs(self, list_id: str, leavers: int) -> dict[str, ConsentState] | None:
        """Every page of the list's unsubscribed, then bounced people; None as soon as their
        first pages show more than ``MAX_KNOWN_OPT_OUTS`` of them, or more pages still to
        read than ``leavers``. A list the service will not read this way (a refusal, not a
        fault) is read leaver by leaver, as before these reads."""
        first_pages: dict[str, dict[str, Any]] = {}
        try:
            for kind in LIST_CONSENT_STATES:
                first_pages[kind] = self.client.list_opt_outs(list_id, kind, date="", page=1)
                total = sum(_total_records(page) for page in first_pages.values())
                pages_left = sum(_pages(page) - 1 for page in first_pages.values())
                if total > MAX_KNOWN_OPT_OUTS or pages_left > leavers:
                    return None
            known: dict[str, ConsentState] = {}
            for kind, state in LIST_CONSENT_STATES.items():
                body, page = first_pages[kind], 1
                while True:
                    for item in ci_get(body, "Results") or []:
                        email = str(ci_get(item, "EmailAddress") or "")
                        if email:
                            known[email.lower()] = state
                    if len(known) > MAX_KNOWN_OPT_OUTS:
                        return None
                    if not has_more_pages(body, page):
                        break
                    page += 1
                    body = self.client.list_opt_outs(list_id, kind, date="", page=page)
            return known
        except ListNotFound:
            raise
        except Permanent as error:
            logger.warning(
                "Campaign Monitor refused to read list %s's opt-outs (%s): leavers are read "
                "one by one",
                list_id,
                error.code,
            )
            return None

    def erase(self, list_id: str, email: str) -> None:
        """``DELETE /subscribers/{listid}.json``: the only deletion the API offers (the
        subscriber becomes Deleted in this list; Campaign Monitor keeps that state)."""
        try:
            self.client.delete_subscriber(list_id, email)
        except ListNotFound:
            raise
        except Permanent as error:
            if error.code != CODE_NOT_IN_LIST:
                raise

    def read_consent(
        self, lists: Sequence[str], *, since: datetime | None, cursor: str | None = None
    ) -> ConsentPage:
        """One page of: each list's unsubscribed, then bounced subscribers (oldest first, from a
        day before ``since`` in the client's time zone: the list reads filter by whole days),
        then the suppression list of each client that owns one of the lists (newest first, down
        to a day before ``since``: it has no date filter), then the spam complaints about each
        of those clients' campaigns (``_complaints``). Deleted subscribers are not read: our
        own mirror runs delete people (§5), which is no opt-out.

        A list the account does not have raises ``ListNotFound`` naming it."""
        wanted = list(dict.fromkeys(lists))
        if len(wanted) > self.max_consent_lists:
            raise ValueError(f"A read-back covers at most {self.max_consent_lists} lists.")
        position = ConsentCursor.decode(cursor) if cursor else None
        if position is not None:
            since = position.since  # every page of one read filters alike
        elif since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        owners = self._owners(wanted)
        streams = [(kind, list_id) for list_id in wanted for kind in LIST_CONSENT_STATES]
        clients = list(dict.fromkeys(owners.values()))
        streams += [(SUPPRESSION_LIST, client) for client in clients]
        # Last, so that a cursor stored before complaints were read still finds its stream.
        streams += [(COMPLAINTS, client) for client in clients]
        index, page, resumed = 0, 1, None
        if position is not None:
            here = (position.kind, position.id)
            if here in streams:
                index, page, resumed = streams.index(here), position.page, position
            else:  # the lists changed since: go on from the same place
                index = position.index
        if index >= len(streams):
            return ConsentPage(events=[], cursor=None)
        kind, stream_id = streams[index]
        if kind == COMPLAINTS:
            try:
                events, inside = self._complaints(stream_id, resumed, since)
            except ScopeMissing as refusal:
                # Connections authorised before ViewReports was asked for: their exports keep
                # working; complaints come back once the connection is authorised again.
                logger.warning(
                    "Campaign Monitor refused to read client %s's campaigns (%s): spam "
                    "complaints are not read until the connection is authorised again",
                    stream_id,
                    refusal.code,
                )
                events, inside = [], None
            if inside is not None:
                following = replace(inside, index=index, since=since)
                return ConsentPage(events=events, cursor=following.encode())
            more = False
        elif kind == SUPPRESSION_LIST:
            events, more = self._suppressed(stream_id, page, since)
        else:
            events, more = self._list_opt_outs(stream_id, owners[stream_id], kind, page, since)
        after = (index, page + 1) if more else (index + 1, 1)
        if after[0] >= len(streams):
            return ConsentPage(events=events, cursor=None)
        following = ConsentCursor(after[0], *streams[after[0]], page=after[1], since=since)
        return ConsentPage(events=events, cursor=following.encode())

    def _list_opt_outs(
        self, list_id: str, client_id: str, kind: str, page: int, since: datetime | None
    ) -> tuple[list[ConsentEvent], bool]:
        zone = self._zone(client_id)
        day = "" if since is None else (since.astimezone(zone) - CONSENT_OVERLAP).date().isoformat()
        body = self.client.list_opt_outs(list_id, kind, date=day, page=page)
        events = [
            ConsentEvent(
                email=str(ci_get(item, "EmailAddress") or ""),
                state=LIST_CONSENT_STATES[kind],
                occurred_at=service_time(ci_get(item, "Date"), zone),
                list_id=list_id,
            )
            for item in ci_get(body, "Results") or []
            if ci_get(item, "EmailAddress")
        ]
        return events, has_more_pages(body, page)

    def _suppressed(
        self, client_id: str, page: int, since: datetime | None
    ) -> tuple[list[ConsentEvent], bool]:
        """A page of the client's suppression list, newest first, stopping at the first entry
        older than a day before ``since``."""
        zone = self._zone(client_id)
        oldest = None if since is None else since - CONSENT_OVERLAP
        body = self.client.suppression_list(client_id, page=page)
        events: list[ConsentEvent] = []
        for item in ci_get(body, "Results") or []:
            occurred_at = service_time(ci_get(item, "Date"), zone)
            if oldest is not None and occurred_at is not None and occurred_at < oldest:
                return events, False
            email = str(ci_get(item, "EmailAddress") or "")
            reason = str(ci_get(item, "SuppressionReason") or "")
            if email:
                events.append(
                    ConsentEvent(
                        email=email,
                        state=suppression_state(reason),
                        occurred_at=occurred_at,
                        reason=reason[:MAX_REASON],
                    )
                )
        return events, has_more_pages(body, page)

    def _complaints(
        self, client_id: str, resumed: ConsentCursor | None, since: datetime | None
    ) -> tuple[list[ConsentEvent], ConsentCursor | None]:
        """A page of spam complaints about one of the client's campaigns, and where the next
        page is in this stream (None: the stream is done). The campaigns are those sent from
        ``COMPLAINTS_AFTER_SENDING`` and a day before ``since``, oldest first; the complaints
        about each, those from a day before ``since`` (both in the client's time zone). A page
        of campaigns is read once per backend: each page of complaints costs one call."""
        zone = self._zone(client_id)
        first = None if since is None else (since.astimezone(zone) - CONSENT_OVERLAP).date()
        day = "" if first is None else first.isoformat()
        sent_from = "" if first is None else (first - COMPLAINTS_AFTER_SENDING).isoformat()
        if resumed is None:
            page, at, campaign_id, spam_page = 1, 0, "", 1
        else:
            page, at, campaign_id = resumed.page, resumed.at, resumed.campaign
            spam_page = resumed.spam_page
        while True:
            body = self._campaigns_page(client_id, sent_from, page)
            campaigns = ci_get(body, "Results") or []
            ids = [str(ci_get(item, "CampaignID") or "") for item in campaigns]
            if campaign_id and campaign_id not in ids[at : at + 1]:
                # Campaigns before it were deleted since the cursor was made.
                if campaign_id in ids:
                    at = ids.index(campaign_id)
                else:
                    spam_page = 1
            if at < len(ids):
                break
            if not has_more_pages(body, page):
                return [], None
            page, at, campaign_id, spam_page = page + 1, 0, "", 1
        name = str(ci_get(campaigns[at], "Name") or "")
        try:
            spam = self.client.campaign_spam(ids[at], date=day, page=spam_page)
        except ListNotFound:
            raise
        except Permanent as error:
            if error.code != CODE_INVALID_CAMPAIGN and error.status != 404:
                raise
            spam = {}  # deleted since the campaigns were listed: nobody complains about it now
        events = [
            ConsentEvent(
                email=str(ci_get(item, "EmailAddress")),
                state=ConsentState.COMPLAINED,
                occurred_at=service_time(ci_get(item, "Date"), zone),
                list_id=str(ci_get(item, "ListID") or ""),
                reason=name[:MAX_REASON],
            )
            for item in ci_get(spam, "Results") or []
            if ci_get(item, "EmailAddress")
        ]
        here = ConsentCursor(0, COMPLAINTS, client_id, page, since, at, ids[at], spam_page)
        if has_more_pages(spam, spam_page):
            return events, replace(here, spam_page=spam_page + 1)
        if at + 1 < len(ids):
            return events, replace(here, at=at + 1, campaign=ids[at + 1], spam_page=1)
        if has_more_pages(body, page):
            return events, replace(here, page=page + 1, at=0, campaign="", spam_page=1)
        return events, None

    def _campaigns_page(self, client_id: str, sent_from: str, page: int) -> Mapping[str, Any]:
        """A page of the client's sent campaigns, read once per backend (the last one kept)."""
        kept = self._campaign_pages.get(client_id)
        if kept is None or kept[0] != (sent_from, page):
            body = self.client.sent_campaigns(client_id, sent_from=sent_from, page=page)
            kept = self._campaign_pages[client_id] = ((sent_from, page), body)
        return kept[1]

    def _owners(self, list_ids: Sequence[str]) -> dict[str, str]:
        """Each list's client (its suppression list and time zone), read once per backend,
        and again when a list is not among them yet (created since)."""
        if any(list_id.lower() not in self._list_clients for list_id in list_ids):
            self._list_clients = {
                str(ci_get(item, "ListID")).lower(): str(ci_get(client, "ClientID"))
                for client in self.client.clients()
                for item in self.client.lists(str(ci_get(client, "ClientID")))
            }
        for list_id in list_ids:
            if list_id.lower() not in self._list_clients:
                raise ListNotFound(service=SERVICE, list_id=list_id)
        return {list_id: self._list_clients[list_id.lower()] for list_id in list_ids}

    def _zone(self, client_id: str) -> tzinfo:
        if client_id not in self._client_zones:
            details = ci_get(self.client.client_details(client_id), "BasicDetails")
            self._client_zones[client_id] = client_time_zone(str(ci_get(details, "TimeZone") or ""))
        return self._client_zones[client_id]

    def _subscriber(
        self, record: Record, *, consent: str
    ) -> tuple[dict[str, Any], RecordFailure | None, list[RecordWarning]]:
        """The record as an import entry, or the failure of a value that cannot be sent."""
        converted = convert_record(self, record)
        if converted.failure is not None:
            return {}, converted.failure, []
        custom_fields: list[dict[str, Any]] = []
        for field, value in converted.values:
            if value is None:
                custom_fields.append({"Key": field.key, "Value": "", "Clear": True})
            elif isinstance(value, list):
                # A multi-select's options, each its own entry; none clears it.
                custom_fields += [{"Key": field.key, "Value": item} for item in value] or [
                    {"Key": field.key, "Value": "", "Clear": True}
                ]
            else:
                custom_fields.append({"Key": field.key, "Value": value})
        subscriber: dict[str, Any] = {
            "EmailAddress": record.email,
            "ConsentToTrack": consent,
            "CustomFields": custom_fields,
        }
        # Without names to send, the name already in the list is kept (an empty one would
        # overwrite it, for instance when the export maps no name fields).
        name = f"{record.first_name} {record.last_name}".strip()
        if name:
            subscriber["Name"] = shortened(name, MAX_VALUE_LENGTH).rstrip()
        return subscriber, None, converted.warnings

    @staticmethod
    def _field(item: Any) -> DestinationField:
        data_type = str(ci_get(item, "DataType", "Text"))
        field_type = FIELD_TYPES.get(data_type.lower(), FieldType.TEXT)
        return DestinationField(
            key=str(ci_get(item, "Key", "")),
            name=str(ci_get(item, "FieldName", "")),
            type=field_type,
            max_length=MAX_VALUE_LENGTH if field_type == FieldType.TEXT else None,
            options=tuple(str(option) for option in ci_get(item, "FieldOptions") or ()),
        )
