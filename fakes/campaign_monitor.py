"""Fake Campaign Monitor: createsend API v3.3, its OAuth flow, and the behaviour our exporter needs.

Contract: /work/shared/spec/campaign_monitor_api.md. Where the contract marks something uncertain
the fake picks one answer and says so here (and in fakes/README.md):

- Unknown list id, or a list of another account: ``400 {"Code":101,"Message":"Invalid ListID"}``.
  Unknown client id: ``400 {"Code":102,"Message":"Invalid ClientID"}``.
- Auth is checked before routing: any path outside ``/oauth`` and ``/_fake/`` needs credentials.
  Missing header: 401/100; unreadable header: 401/50; unknown API key: 401/100; Bearer tokens:
  unknown 401/120, expired 401/121, revoked 401/122. Scopes are recorded but not enforced.
- Paths, query parameter names and JSON keys are case-insensitive. Paths must end in ``.json``
  (the real API would answer XML); without it the fake answers 404 so the mistake shows.
- Refresh tokens rotate: every refresh returns a new refresh token and the old one stops working
  (``--no-rotate-refresh-tokens`` turns that off). Access tokens issued earlier stay valid until
  they expire. Clients must store whatever comes back.
- Authorization codes are single-use and live 10 minutes. A wrong client_id/client_secret gets
  ``400 {"error":"invalid_client",...}``; a wrong, used or expired code or a redirect_uri that
  differs from the authorize request gets ``400 {"error":"invalid_grant",...}``.
- Add (``POST /subscribers/{id}.json``) behaves like a one-subscriber import: an unsubscribed,
  deleted or bounced address without ``Resubscribe:true`` gets 400 with the same code the import
  would put in FailureDetails (206/205/207); a suppressed one gets 204 whatever ``Resubscribe``
  says (only an active member of the list is updated as it is).
- Unsubscribe honours the list's ``UnsubscribeSetting`` (default ``AllClientLists``: the address
  becomes Unsubscribed on every list of the client and goes on the client's suppression list).
  Delete only sets State=Deleted; it never suppresses.
- Custom field keys: "new date field" becomes ``[newdatefield]`` (everything but letters, digits
  and ``_`` removed, case kept). Subscriber keys match bare, bracketed or as the field name, in
  any case. An empty Value without ``Clear:true`` leaves the stored value alone;
  MultiSelectMany keeps every value sent.
- A list holds at most 50 custom fields with names of at most 100 characters (else 400/250 or
  254). MultiSelectOne/Many need options (257), other types take none (256); Country and
  USState get generated options (country and US state names).
- Custom field values are refused per subscriber with Code 253 (in an import's FailureDetails;
  a 400 for add and update) for: a key the list does not define, a value over 250 characters,
  a Number that is not a decimal like ``-12.5``, a Date that is not YYYY/MM/DD or YYYY-MM-DD
  between 1900/01/01 and 2076/06/06, a MultiSelect/Country/USState value that is not one of
  the field's options (ignoring case). Nothing of a refused subscriber is written.
- ``ConsentToTrack`` "Unchanged" (or none) on a new subscriber is stored as "No" (§10).
- PUT with an ``EmailAddress`` that already belongs to another member replaces that member.
- Consent read-back (§11): dates are kept in UTC and written in the client's ``TimeZone``
  (``GET /clients/{id}.json``; each client's own, else the ``time_zone`` setting, default
  "(GMT) Coordinated Universal Time"), a fixed offset without daylight saving. A list read's
  ``date`` (``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS``, in that zone) keeps states changed at
  or after it; its ``Date`` values have seconds ``00``. ``ConsentToTrack`` only with
  ``includetrackingpreference=true``. The suppression list (``GET
  /clients/{id}/suppressionlist.json``) has no date filter; its ``SuppressionReason`` is
  "Unsubscribed", "Bounced", "Spam Complaint" or "Manually Added" (the contract names only the
  first). Page sizes outside 10-1000 get 400 Code 801; a page past the end, empty ``Results``.
- Campaigns and their spam complaints (§11): ``GET /clients/{id}/campaigns.json`` lists the
  client's sent campaigns in the paged envelope, ordered by ``SentDate`` (newest first unless
  ``orderdirection=asc``; ties by id), keeping those sent on or after the day ``sentfromdate``
  and on or before the day ``senttodate`` (``YYYY-MM-DD``, in the client's zone) and, with
  ``tags``, those with any of those comma-separated tags. ``GET /campaigns/{id}/spam.json``
  pages a campaign's complaints ``{EmailAddress, ListID, Date}``, by ``date`` (default) or
  ``email``, oldest first unless ``orderdirection=desc``, keeping those at or after ``date``
  as the list reads do. Dates are written in the client's zone with seconds ``00``, as the
  vendor's fixtures show them. A campaign of another account, or none, gets 400 Code 301
  "Invalid CampaignID" (the legacy API's code; the contract has none). The fake's campaigns
  are all sent: they come from ``seed`` and from complaints recorded by ``consent``.
- ``POST /_fake/consent`` (see ``consent``) makes people opt out as they would at the service.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from fakes.places import COUNTRIES, US_STATES
from fakes.server import (
    HTML_CONTENT_TYPE,
    BadRequestBody,
    ControlError,
    FakeApp,
    Request,
    Response,
    as_bool,
    consent_request,
    empty_response,
    json_response,
    match_route,
    option,
)

API_PREFIX = "/api/v3.3"
MAX_IMPORT_BATCH = 1000
AUTHORIZATION_CODE_LIFETIME = 600
DEFAULT_TOKEN_LIFETIME = 1209600  # 14 days, as in the vendor's fixture

ACTIVE, UNSUBSCRIBED, DELETED, BOUNCED, UNCONFIRMED = (
    "Active",
    "Unsubscribed",
    "Deleted",
    "Bounced",
    "Unconfirmed",
)
STATES = (ACTIVE, UNSUBSCRIBED, DELETED, BOUNCED, UNCONFIRMED)
# Why an existing member is not re-added without Resubscribe:true (codes from the contract §6).
INACTIVE_FAILURES = {
    UNSUBSCRIBED: (206, "Subscriber Is Unsubscribed"),
    DELETED: (205, "Subscriber Is Deleted"),
    BOUNCED: (207, "Subscriber Is Bounced"),
    UNCONFIRMED: (208, "Subscriber Is Unconfirmed"),
}
SUPPRESSED_FAILURE = (204, "Subscriber In Suppression List")
DATA_TYPES = ("Text", "Number", "MultiSelectOne", "MultiSelectMany", "Date", "Country", "USState")
MULTI_TYPES = ("MultiSelectOne", "MultiSelectMany")
# The contract leaves these limits open (§10); the fake picks them.
MAX_FIELDS = 50
MAX_FIELD_NAME = 100
MAX_VALUE_LENGTH = 250
# A custom field value the list refuses (a 25x code, §6): per subscriber in an import.
FIELD_VALUE_CODE = 253
FIRST_DATE, LAST_DATE = "1900/01/01", "2076/06/06"
DATE_PATTERN = re.compile(r"^(\d{4})[/-](\d{2})[/-](\d{2})$")
NUMBER_PATTERN = re.compile(r"^-?\d+(\.\d+)?$")
UNSUBSCRIBE_SETTINGS = ("AllClientLists", "OnlyThisList")
SCOPES = (
    "ViewReports",
    "ManageLists",
    "CreateCampaigns",
    "ImportSubscribers",
    "SendCampaigns",
    "ViewSubscribersInReports",
    "ManageTemplates",
    "AdministerPersons",
    "AdministerAccount",
    "ViewTransactional",
    "SendTransactional",
    "Automation",
)
# Deterministic ids for the demo data, so the app's saved connection survives a fake restart.
DEMO_NAMESPACE = uuid.UUID("6f1c2a7e-4b8d-4c51-9a43-2f0d8e6b5c11")

# local@domain.tld: no spaces, one @, a dotted domain with a 2+ letter TLD.
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,}$"
)


def is_valid_email(address: str) -> bool:
    return len(address) <= 254 and EMAIL_PATTERN.match(address) is not None


@lru_cache(maxsize=4096)
def derive_key(name: str) -> str:
    """``"new date field"`` or ``"[newdatefield]"`` → ``"newdatefield"`` (no brackets)."""
    return re.sub(r"[^0-9A-Za-z_]", "", name.strip().removeprefix("[").removesuffix("]"))


def _lowercase_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key.lower(): value for key, value in pairs}


def parse_json_ci(raw: bytes | str) -> Any:
    """Parse JSON with every object key lower-cased: the API ignores the case of keys."""
    try:
        return json.loads(raw or b"null", object_pairs_hook=_lowercase_keys)
    except ValueError as error:
        raise BadRequestBody(str(error)) from error


def lowercase_keys_deep(value: Any) -> Any:
    return parse_json_ci(json.dumps(value))


TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_TIME_ZONE = "(GMT) Coordinated Universal Time"
TIME_ZONE_PATTERN = re.compile(r"\((?:GMT|UTC)\s*(?:([+-])(\d{1,2}):?(\d{2})?)?\)", re.I)
#: ``POST /_fake/consent`` states, and the suppression reason each writes.
CONSENT_STATES = ("unsubscribed", "bounced", "complained", "suppressed")
SUPPRESSION_REASONS = {
    "unsubscribed": "Unsubscribed",
    "bounced": "Bounced",
    "complained": "Spam Complaint",
    "suppressed": "Manually Added",
}


def _now_text() -> str:
    """Now in UTC, as every date is kept (written in the client's zone)."""
    return datetime.now(UTC).strftime(TIME_FORMAT)


def zone_offset(time_zone: str) -> timedelta:
    """``"(GMT+10:00) Canberra, Melbourne, Sydney"`` → 10 hours; no offset → 0."""
    found = TIME_ZONE_PATTERN.search(time_zone or "")
    if found is None or not found.group(1):
        return timedelta(0)
    offset = timedelta(hours=int(found.group(2)), minutes=int(found.group(3) or 0))
    return -offset if found.group(1) == "-" else offset


def in_zone(utc_text: str, offset: timedelta, *, whole_minutes: bool = False) -> str:
    """A stored UTC time written in a client's zone (list reads show seconds as ``00``)."""
    text = utc_text
    if offset:
        text = (datetime.strptime(utc_text, TIME_FORMAT) + offset).strftime(TIME_FORMAT)
    return text[:-2] + "00" if whole_minutes else text


def from_zone(text: str, offset: timedelta) -> str:
    """A ``date`` parameter (a day, or a day and time) in a client's zone, as stored UTC text;
    ValueError when it is neither."""
    parsed = datetime.fromisoformat(text.strip())
    return (parsed.replace(tzinfo=None) - offset).strftime(TIME_FORMAT)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class CampaignMonitorSettings:
    client_id: str = option(
        "demo-client-id", "client_id of the demo OAuth application.", startup_only=True
    )
    client_secret: str = option(
        "demo-client-secret", "client_secret of the demo OAuth application.", startup_only=True
    )
    api_key: str = option(
        "demo-cm-api-key", "API key of the demo account (HTTP Basic).", startup_only=True
    )
    token_lifetime: int = option(
        DEFAULT_TOKEN_LIFETIME, "Lifetime of newly issued access tokens, in seconds."
    )
    rotate_refresh_tokens: bool = option(
        True, "Refreshing returns a new refresh token and invalidates the old one."
    )
    rate_limit: float = option(
        0.0, "Requests per second per credential (token or API key); 0 disables the limit."
    )
    time_zone: str = option(
        DEFAULT_TIME_ZONE,
        'TimeZone of clients seeded without one, e.g. "(GMT+10:00) Canberra, Melbourne, Sydney".',
    )


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass
class Application:
    client_id: str
    client_secret: str
    name: str
    # Empty: any redirect_uri is accepted.
    redirect_uris: list[str] = field(default_factory=list)


@dataclass
class Account:
    id: str
    name: str
    api_keys: set[str] = field(default_factory=set)
    client_ids: list[str] = field(default_factory=list)


@dataclass
class Client:
    id: str
    name: str
    account_id: str
    list_ids: list[str] = field(default_factory=list)
    # Lower-cased address → address as first suppressed.
    suppressed: dict[str, str] = field(default_factory=dict)
    # Lower-cased address → (when suppressed, UTC text; SuppressionReason).
    suppressions: dict[str, tuple[str, str]] = field(default_factory=dict)
    # "(GMT+10:00) Canberra, ..."; empty: the fake's ``time_zone`` setting.
    time_zone: str = ""
    # The client's (sent) campaigns, lower-cased ids, in the order they were made.
    campaign_ids: list[str] = field(default_factory=list)

    def suppress(self, email: str, reason: str, at: str) -> None:
        """Put the address on the suppression list (an address already there stays as it was)."""
        lower = email.lower()
        if lower not in self.suppressed:
            self.suppressed[lower] = email
            self.suppressions[lower] = (at, reason)


@dataclass
class Campaign:
    """A sent campaign and the spam complaints about it."""

    id: str
    name: str
    client_id: str
    sent_at: str  # UTC text
    list_ids: list[str]
    tags: list[str] = field(default_factory=list)
    # (address, list id, when as UTC text) of each complaint, in the order they came.
    complaints: list[tuple[str, str, str]] = field(default_factory=list)

    def as_api(self, offset: timedelta) -> dict[str, Any]:
        """As the vendor's campaigns fixture (v3.3)."""
        web = f"https://fake.createsend.example/t/{self.id}"
        entry: dict[str, Any] = {
            "WebVersionURL": web,
            "WebVersionTextURL": f"{web}/t",
            "CampaignID": self.id,
            "Subject": self.name,
            "Name": self.name,
            "FromName": "Fake Sender",
            "FromEmail": "sender@fake.createsend.example",
            "ReplyTo": "sender@fake.createsend.example",
            "SentDate": in_zone(self.sent_at, offset, whole_minutes=True),
            "TotalRecipients": 0,
        }
        if self.tags:
            entry["Tags"] = list(self.tags)
        return entry


@dataclass
class CustomField:
    field_name: str
    key: str  # bracketed, e.g. "[newdatefield]"
    data_type: str
    options: list[str]
    visible: bool

    def as_api(self) -> dict[str, Any]:
        return {
            "FieldName": self.field_name,
            "Key": self.key,
            "DataType": self.data_type,
            "FieldOptions": self.options,
            "VisibleInPreferenceCenter": self.visible,
        }


class Subscriber:
    """One list member; slotted because the benchmark keeps a million of them."""

    __slots__ = ("consent", "custom", "email", "joined", "name", "state", "state_changed")

    def __init__(self, email: str, now: str) -> None:
        self.email = email
        self.name = ""
        self.state = ACTIVE
        # Normalised key (lower-case, no brackets) → value, or list of values for MultiSelectMany.
        self.custom: dict[str, Any] | None = None
        self.consent = "Unchanged"
        self.state_changed = now
        self.joined = now


class SubscriberList:
    def __init__(self, list_id: str, title: str, client_id: str) -> None:
        self.id = list_id
        self.title = title
        self.client_id = client_id
        self.unsubscribe_setting = "AllClientLists"
        self.confirmed_opt_in = False
        self.fields: dict[str, CustomField] = {}
        # Keys written to subscribers without a field definition: normalised → as first sent.
        self.undefined_keys: dict[str, str] = {}
        self.subscribers: dict[str, Subscriber] = {}
        # Bumped on every write; keys the cache of sorted members used by the paged listings.
        self.version = 0
        self._sorted_cache: tuple[tuple[Any, ...], list[Subscriber]] | None = None

    def details(self) -> dict[str, Any]:
        return {
            "ListID": self.id,
            "Title": self.title,
            "UnsubscribePage": "",
            "ConfirmedOptIn": self.confirmed_opt_in,
            "ConfirmationSuccessPage": "",
            "UnsubscribeSetting": self.unsubscribe_setting,
        }

    def display_key(self, norm: str) -> str:
        defined = self.fields.get(norm)
        return defined.key if defined else f"[{self.undefined_keys.get(norm, norm)}]"

    def api_custom_fields(self, subscriber: Subscriber) -> list[dict[str, str]]:
        """As the vendor's subscriber fixtures: Key is the field name, one entry per value."""
        entries: list[dict[str, str]] = []
        for norm, value in (subscriber.custom or {}).items():
            defined = self.fields.get(norm)
            name = defined.field_name if defined else self.undefined_keys.get(norm, norm)
            for item in value if isinstance(value, list) else [value]:
                entries.append({"Key": name, "Value": item})
        return entries

    def api_subscriber(
        self,
        subscriber: Subscriber,
        offset: timedelta = timedelta(0),
        *,
        listed: bool = False,
        consent: bool = True,
    ) -> dict[str, Any]:
        """Dates in the client's zone (``offset``); a list read (``listed``) shows them with
        seconds ``00`` and ``ConsentToTrack`` only when asked (``consent``)."""
        changed = in_zone(subscriber.state_changed, offset, whole_minutes=listed)
        entry = {
            "EmailAddress": subscriber.email,
            "Name": subscriber.name,
            "Date": changed,
            "StateChangedDate": changed,
            "ListJoinedDate": in_zone(subscriber.joined, offset, whole_minutes=listed),
            "State": subscriber.state,
            "CustomFields": self.api_custom_fields(subscriber),
            "ReadsEmailWith": "",
        }
        if consent:
            entry["ConsentToTrack"] = subscriber.consent
        return entry

    def state_subscriber(self, subscriber: Subscriber) -> dict[str, Any]:
        """For /_fake/state: custom fields as a dict keyed by the bracketed field key."""
        return {
            "EmailAddress": subscriber.email,
            "Name": subscriber.name,
            "State": subscriber.state,
            "CustomFields": {
                self.display_key(norm): value for norm, value in (subscriber.custom or {}).items()
            },
            "ConsentToTrack": subscriber.consent,
            "Date": subscriber.state_changed,
            "ListJoinedDate": subscriber.joined,
        }

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for subscriber in self.subscribers.values():
            counts[subscriber.state] += 1
        counts["total"] = len(self.subscribers)
        return counts

    def sorted_members(self, state: str, order_field: str, descending: bool, since: str) -> list:
        """Members in ``state``, sorted; cached until the next write so paging stays cheap."""
        cache_key = (self.version, state, order_field, descending, since)
        if self._sorted_cache is not None and self._sorted_cache[0] == cache_key:
            return self._sorted_cache[1]
        members = [
            s
            for s in self.subscribers.values()
            if s.state == state and (not since or s.state_changed >= since)
        ]
        if order_field == "name":
            members.sort(key=lambda s: (s.name.lower(), s.email.lower()), reverse=descending)
        elif order_field == "date":
            members.sort(key=lambda s: (s.state_changed, s.email.lower()), reverse=descending)
        else:
            members.sort(key=lambda s: s.email.lower(), reverse=descending)
        self._sorted_cache = (cache_key, members)
        return members


@dataclass
class Grant:
    """One user's consent to one application; tokens hang off it and die with it."""

    account_id: str
    client_id: str
    scopes: list[str]
    refresh_token: str | None = None
    revoked: bool = False
    access_tokens: list[AccessToken] = field(default_factory=list)


@dataclass
class AccessToken:
    token: str
    grant: Grant
    expires_at: float


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    account_id: str
    scopes: list[str]
    expires_at: float


@dataclass
class Caller:
    """Who is calling: the account and the credential (rate limits are per credential)."""

    account: Account
    credential: str


class ApiError(Exception):
    """Answered as ``{"Code": code, "Message": message}`` (plus ResultData if given)."""

    def __init__(
        self, status: int, code: int, message: str, result_data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.result_data = result_data


# Route table: (method, path segments with "*" for an id, handler name, label for counters).
ROUTES = (
    ("GET", ("clients",), "get_clients", "GET /clients.json"),
    ("GET", ("clients", "*"), "get_client", "GET /clients/{clientid}.json"),
    (
        "GET",
        ("clients", "*", "suppressionlist"),
        "get_suppression_list",
        "GET /clients/{clientid}/suppressionlist.json",
    ),
    ("GET", ("clients", "*", "lists"), "get_client_lists", "GET /clients/{clientid}/lists.json"),
    (
        "GET",
        ("clients", "*", "campaigns"),
        "get_campaigns",
        "GET /clients/{clientid}/campaigns.json",
    ),
    (
        "GET",
        ("campaigns", "*", "spam"),
        "get_campaign_spam",
        "GET /campaigns/{campaignid}/spam.json",
    ),
    ("GET", ("lists", "*"), "get_list", "GET /lists/{listid}.json"),
    (
        "GET",
        ("lists", "*", "customfields"),
        "get_custom_fields",
        "GET /lists/{listid}/customfields.json",
    ),
    (
        "POST",
        ("lists", "*", "customfields"),
        "create_custom_field",
        "POST /lists/{listid}/customfields.json",
    ),
    *(
        (
            "GET",
            ("lists", "*", state.lower()),
            "get_members",
            f"GET /lists/{{listid}}/{state.lower()}.json",
        )
        for state in STATES
    ),
    ("POST", ("subscribers", "*"), "add_subscriber", "POST /subscribers/{listid}.json"),
    ("GET", ("subscribers", "*"), "get_subscriber", "GET /subscribers/{listid}.json"),
    ("PUT", ("subscribers", "*"), "update_subscriber", "PUT /subscribers/{listid}.json"),
    ("DELETE", ("subscribers", "*"), "delete_subscriber", "DELETE /subscribers/{listid}.json"),
    (
        "POST",
        ("subscribers", "*", "import"),
        "import_subscribers",
        "POST /subscribers/{listid}/import.json",
    ),
    (
        "POST",
        ("subscribers", "*", "unsubscribe"),
        "unsubscribe_subscriber",
        "POST /subscribers/{listid}/unsubscribe.json",
    ),
)


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


class CampaignMonitorFake(FakeApp):
    kind = "campaign_monitor"
    api_prefix = API_PREFIX
    settings_class = CampaignMonitorSettings
    config_actions = ("expire_tokens", "expire_tokens_after")
    settings: CampaignMonitorSettings

    def _reset_state(self) -> None:
        self.applications: dict[str, Application] = {}
        self.accounts: dict[str, Account] = {}
        self.clients: dict[str, Client] = {}
        self.lists: dict[str, SubscriberList] = {}
        self.campaigns: dict[str, Campaign] = {}
        self.api_keys: dict[str, str] = {}  # key → account id
        self.grants: list[Grant] = []
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        # Bearer requests still answered before every access token expires (0: not armed).
        self.expire_tokens_countdown = 0
        if self.demo:
            self._seed_demo()

    def _seed_demo(self) -> None:
        def demo_id(name: str) -> str:
            return uuid.uuid5(DEMO_NAMESPACE, name).hex

        settings = self.settings
        self.seed(
            {
                "applications": [
                    {
                        "client_id": settings.client_id,
                        "client_secret": settings.client_secret,
                        "name": "Audience Relay",
                    }
                ],
                "accounts": [
                    {
                        "id": "demo",
                        "name": "Demo Account",
                        "api_key": settings.api_key,
                        "clients": [
                            {
                                "id": demo_id("client/Demo Client"),
                                "name": "Demo Client",
                                "lists": [
                                    {"id": demo_id("list/Newsletter"), "title": "Newsletter"},
                                    {"id": demo_id("list/Customers"), "title": "Customers"},
                                ],
                            }
                        ],
                    }
                ],
            }
        )

    # -- errors -----------------------------------------------------------------------------

    @staticmethod
    def error(
        status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return json_response(status, {"Code": code, "Message": message}, headers)

    def burst_429_response(self) -> Response:
        limit = int(self.settings.rate_limit) or 60
        return self.error(429, 429, "Rate limit exceeded", self.burst_headers(limit))

    def server_error_response(self, status: int) -> Response:
        return self.error(
            status, status, "Internal Server Error" if status == 500 else "Server Error"
        )

    # -- request entry point ----------------------------------------------------------------

    def handle_api(self, request: Request) -> Response:
        path = request.path.lower().rstrip("/")
        if path == "/oauth":
            return self.authorize(request)
        if path == "/oauth/token":
            return self.exchange_token(request)

        caller_or_error = self.authenticate(request)
        if isinstance(caller_or_error, Response):
            # Counted under the endpoint that was called, so that a client's refused calls
            # (an expired token's 121s) show in requests_by_endpoint beside the answered ones.
            caller_or_error.endpoint = self._endpoint_label(request.method, path)
            return caller_or_error
        caller = caller_or_error

        rate_headers: dict[str, str] = {}
        if self.settings.rate_limit > 0:
            decision = self.limiter.acquire(caller.credential, self.settings.rate_limit)
            rate_headers = {
                "X-RateLimit-Limit": str(decision.limit),
                "X-RateLimit-Remaining": str(decision.remaining),
                "X-RateLimit-Reset": str(decision.reset_seconds),
            }
            if not decision.allowed:
                return self.error(429, 429, "Rate limit exceeded", rate_headers)

        response = self.route(request, path, caller)
        response.headers.update(rate_headers)
        return response

    @staticmethod
    def _segments(path: str) -> list[str] | None:
        """The path's segments after the API prefix, or None when it is not a JSON API path."""
        prefix = API_PREFIX.lower() + "/"
        if not path.startswith(prefix) or not path.endswith(".json"):
            return None
        return path[len(prefix) : -len(".json")].split("/")

    def _endpoint_label(self, method: str, path: str) -> str | None:
        segments = self._segments(path)
        match = match_route(ROUTES, method, segments) if segments is not None else None
        return match[1] if isinstance(match, tuple) else None

    def route(self, request: Request, path: str, caller: Caller) -> Response:
        segments = self._segments(path)
        if segments is None:
            return self.error(404, 404, "Not Found (the fake speaks JSON only: append .json)")
        match = match_route(ROUTES, request.method, segments)
        if match is None:
            return self.error(404, 404, "Not Found")
        if match is True:
            return self.error(405, 405, f"The requested resource does not support {request.method}")
        assert isinstance(match, tuple)
        handler_name, label, ids = match
        try:
            response: Response = getattr(self, handler_name)(request, caller, *ids)
        except ApiError as error:
            payload: dict[str, Any] = {}
            if error.result_data is not None:
                payload["ResultData"] = error.result_data
            payload.update({"Code": error.code, "Message": error.message})
            response = json_response(error.status, payload)
        except BadRequestBody:
            response = self.error(400, 400, "Failed to deserialize your request.")
        response.endpoint = label
        return response

    # -- authentication ---------------------------------------------------------------------

    def authenticate(self, request: Request) -> Caller | Response:
        header = (request.headers.get("Authorization") or "").strip()
        if not header:
            return self.error(401, 100, "Invalid API Key")
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        with self.lock:
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(credential, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    return self.error(
                        401, 50, "Must supply a valid HTTP Basic Authorization header"
                    )
                api_key = decoded.partition(":")[0]
                account_id = self.api_keys.get(api_key)
                if account_id is None:
                    return self.error(401, 100, "Invalid API Key")
                return Caller(self.accounts[account_id], f"apikey:{api_key}")
            if scheme.lower() == "bearer":
                token = self.access_tokens.get(credential)
                if token is None:
                    return self.error(401, 120, "Invalid OAuth Token")
                if token.grant.revoked:
                    return self.error(401, 122, "Revoked OAuth Token")
                if time.time() >= token.expires_at:
                    return self.error(401, 121, "Expired OAuth Token")
                if self.expire_tokens_countdown:
                    self.expire_tokens_countdown -= 1
                    if not self.expire_tokens_countdown:
                        self._expire(list(self.access_tokens.values()))
                return Caller(self.accounts[token.grant.account_id], f"token:{credential}")
        return self.error(401, 50, "Must supply a valid HTTP Basic Authorization header")

    # -- OAuth ------------------------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        """GET: the consent page. POST (its form): redirect back with a code or an error."""
        params = request.form() if request.method == "POST" else dict(request.query)
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        scopes = [s.strip() for s in params.get("scope", "").split(",") if s.strip()]
        with self.lock:
            application = self.applications.get(client_id)
            accounts = list(self.accounts.values())
        if application is None:
            return self._page(400, "Authorization failed", "<p>Unknown <code>client_id</code>.</p>")
        if not redirect_uri:
            return self._page(
                400, "Authorization failed", "<p>Missing <code>redirect_uri</code>.</p>"
            )
        if application.redirect_uris and redirect_uri not in application.redirect_uris:
            return self._page(
                400, "Authorization failed", "<p><code>redirect_uri</code> is not registered.</p>"
            )
        if request.method == "GET":
            return self._consent_page(application, params, scopes, accounts)
        if request.method != "POST":
            return self._page(405, "Method not allowed", "")

        state = params.get("state")
        if params.get("decision") != "allow":
            return self._redirect(
                redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "The user denied access to the application.",
                    **({"state": state} if state is not None else {}),
                },
            )
        account_id = params.get("account_id") or (accounts[0].id if accounts else "")
        if account_id not in self.accounts:
            return self._page(400, "Authorization failed", "<p>No such account.</p>")
        code = secrets.token_urlsafe(18)
        with self.lock:
            self.codes[code] = AuthorizationCode(
                client_id,
                redirect_uri,
                account_id,
                scopes,
                time.time() + AUTHORIZATION_CODE_LIFETIME,
            )
        return self._redirect(
            redirect_uri, {"code": code, **({"state": state} if state is not None else {})}
        )

    def _consent_page(
        self,
        application: Application,
        params: dict[str, str],
        scopes: list[str],
        accounts: list[Account],
    ) -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in params.items()
            if name in ("client_id", "redirect_uri", "scope", "state", "type")
        )
        scope_items = (
            "".join(f"<li>{html.escape(scope)}</li>" for scope in scopes) or "<li>(none)</li>"
        )
        account_options = "".join(
            f'<option value="{html.escape(a.id)}">{html.escape(a.name)}</option>' for a in accounts
        )
        body = f"""
<p><strong id="application-name">{html.escape(application.name)}</strong> would like to access
your Campaign Monitor account.</p>
<p>It asks for these permissions:</p>
<ul id="scopes">{scope_items}</ul>
<form method="post" action="{html.escape((self.public_url or "") + "/oauth")}">
  {hidden}
  <p><label>Account <select name="account_id">{account_options}</select></label></p>
  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>"""
        return self._page(200, f"Authorize {application.name}", body)

    @staticmethod
    def _page(status: int, title: str, body: str) -> Response:
        document = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f" · Campaign Monitor (fake)</title></head><body><h1>{html.escape(title)}</h1>"
            f"{body}</body></html>"
        )
        return Response(status, document.encode("utf-8"), HTML_CONTENT_TYPE, endpoint="/oauth")

    @staticmethod
    def _redirect(redirect_uri: str, params: dict[str, str]) -> Response:
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode(params)}"
        return Response(302, b"", HTML_CONTENT_TYPE, {"Location": location}, endpoint="/oauth")

    def exchange_token(self, request: Request) -> Response:
        """``POST /oauth/token``: parameters from the form body and/or the query string."""
        endpoint = "POST /oauth/token"
        if request.method != "POST":
            return json_response(405, {"error": "invalid_request", "error_description": "Use POST"})
        params = request.form()
        if "json" in (request.headers.get("Content-Type") or "") and request.body.strip():
            try:
                body = json.loads(request.body)
                params.update({k.lower(): str(v) for k, v in body.items()})
            except (ValueError, AttributeError):
                pass
        grant_type = params.get("grant_type", "")

        def oauth_error(error: str, description: str) -> Response:
            return json_response(
                400, {"error": error, "error_description": description}, endpoint=endpoint
            )

        with self.lock:
            if grant_type == "authorization_code":
                application = self.applications.get(params.get("client_id", ""))
                if application is None or application.client_secret != params.get("client_secret"):
                    return oauth_error("invalid_client", "Invalid client_id or client_secret")
                code = self.codes.pop(params.get("code", ""), None)
                if (
                    code is None
                    or code.expires_at < time.time()
                    or code.client_id != application.client_id
                    or code.redirect_uri != params.get("redirect_uri")
                ):
                    return oauth_error("invalid_grant", "Specified code was invalid or expired")
                grant = Grant(code.account_id, code.client_id, code.scopes)
                self.grants.append(grant)
                tokens = self._issue_tokens(grant)
            elif grant_type == "refresh_token":
                grant = self.refresh_tokens.get(params.get("refresh_token", ""))
                if grant is None or grant.revoked:
                    return oauth_error(
                        "invalid_grant", "Specified refresh_token was invalid or expired"
                    )
                tokens = self._issue_tokens(grant, rotate=self.settings.rotate_refresh_tokens)
            else:
                return oauth_error(
                    "unsupported_grant_type",
                    "grant_type must be authorization_code or refresh_token",
                )
        return json_response(200, tokens, endpoint=endpoint)

    def _issue_tokens(
        self,
        grant: Grant,
        *,
        rotate: bool = True,
        access_token: str | None = None,
        refresh_token: str | None = None,
        lifetime: int | None = None,
    ) -> dict[str, Any]:
        """Issue an access token, and a refresh token replacing the grant's old one if rotating."""
        lifetime = self.settings.token_lifetime if lifetime is None else lifetime
        token = AccessToken(
            access_token or secrets.token_urlsafe(24), grant, time.time() + lifetime
        )
        grant.access_tokens.append(token)
        self.access_tokens[token.token] = token
        if rotate or grant.refresh_token is None:
            if grant.refresh_token is not None:
                self.refresh_tokens.pop(grant.refresh_token, None)
            grant.refresh_token = refresh_token or secrets.token_urlsafe(24)
            self.refresh_tokens[grant.refresh_token] = grant
        return {
            "access_token": token.token,
            "expires_in": lifetime,
            "refresh_token": grant.refresh_token,
        }

    # -- lookups ----------------------------------------------------------------------------

    def _owned_list(self, caller: Caller, list_id: str) -> SubscriberList:
        found = self.lists.get(list_id.lower())
        if found is None or found.client_id not in caller.account.client_ids:
            raise ApiError(400, 101, "Invalid ListID")
        return found

    @staticmethod
    def _json_object(request: Request) -> dict[str, Any]:
        body = parse_json_ci(request.body)
        if not isinstance(body, dict):
            raise BadRequestBody("expected a JSON object")
        return body

    # -- clients and lists ------------------------------------------------------------------

    def get_clients(self, request: Request, caller: Caller) -> Response:
        with self.lock:
            payload = [
                {"ClientID": self.clients[c].id, "Name": self.clients[c].name}
                for c in caller.account.client_ids
            ]
        return json_response(200, payload)

    def get_client_lists(self, request: Request, caller: Caller, client_id: str) -> Response:
        with self.lock:
            client = self.clients.get(client_id.lower())
            if client is None or client.account_id != caller.account.id:
                raise ApiError(400, 102, "Invalid ClientID")
            payload = [
                {"ListID": self.lists[i].id, "Name": self.lists[i].title} for i in client.list_ids
            ]
        return json_response(200, payload)

    def get_list(self, request: Request, caller: Caller, list_id: str) -> Response:
        with self.lock:
            return json_response(200, self._owned_list(caller, list_id).details())

    def get_custom_fields(self, request: Request, caller: Caller, list_id: str) -> Response:
        with self.lock:
            found = self._owned_list(caller, list_id)
            return json_response(200, [f.as_api() for f in found.fields.values()])

    def create_custom_field(self, request: Request, caller: Caller, list_id: str) -> Response:
        body = self._json_object(request)
        with self.lock:
            found = self._owned_list(caller, list_id)
            created = self._add_custom_field(found, body)
        return json_response(201, created.key)

    def _add_custom_field(self, target: SubscriberList, body: dict[str, Any]) -> CustomField:
        name = _text(body.get("fieldname")).strip()
        key = derive_key(name)
        if not key or len(name) > MAX_FIELD_NAME:
            raise ApiError(400, 254, f"Invalid Field Name: 1 to {MAX_FIELD_NAME} characters")
        if len(target.fields) >= MAX_FIELDS:
            raise ApiError(400, 250, f"The list already has {MAX_FIELDS} custom fields")
        data_type = next(
            (t for t in DATA_TYPES if t.lower() == _text(body.get("datatype", "Text")).lower()),
            None,
        )
        if data_type is None:
            raise ApiError(400, 253, f"Invalid Data Type; use one of {', '.join(DATA_TYPES)}")
        if key.lower() in target.fields:
            raise ApiError(400, 255, "Field Key Already Exists")
        options = [str(o) for o in body.get("options") or []]
        if data_type in MULTI_TYPES and not options:
            raise ApiError(400, 257, "Options are required for a multi-valued custom field")
        if data_type not in MULTI_TYPES and options:
            raise ApiError(400, 256, "Options are only for multi-valued custom fields")
        if data_type == "Country":
            options = list(COUNTRIES)
        elif data_type == "USState":
            options = list(US_STATES)
        visible = as_bool(body.get("visibleinpreferencecenter"), True)
        created = CustomField(name, f"[{key}]", data_type, options, visible)
        target.fields[key.lower()] = created
        target.undefined_keys.pop(key.lower(), None)
        target.version += 1
        return created

    def get_members(self, request: Request, caller: Caller, list_id: str) -> Response:
        state_segment = request.path.lower().rstrip("/").rsplit("/", 1)[1].removesuffix(".json")
        state = next(s for s in STATES if s.lower() == state_segment)
        query = request.query
        page, page_size, order_field, direction = self._paging(query)
        consent = as_bool(query.get("includetrackingpreference"))
        with self.lock:
            found = self._owned_list(caller, list_id)
            offset = self._offset(self.clients[found.client_id])
            since = query.get("date") or ""
            if since:
                try:
                    since = from_zone(since, offset)
                except ValueError:
                    raise ApiError(
                        400, 400, "Invalid date: use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"
                    ) from None
            members = found.sorted_members(state, order_field, direction == "desc", since)
            start = (page - 1) * page_size
            results = [
                found.api_subscriber(s, offset, listed=True, consent=consent)
                for s in members[start : start + page_size]
            ]
            total = len(members)
        return self._page_of(results, total, page, page_size, order_field, direction)

    @staticmethod
    def _paging(query: dict[str, str]) -> tuple[int, int, str, str]:
        """``page``, ``pagesize`` (10-1000, else 400/801), ``orderfield`` and
        ``orderdirection`` of a paged read."""
        try:
            page = max(1, int(query.get("page") or 1))
            page_size = int(query.get("pagesize") or 1000)
        except ValueError:
            raise ApiError(400, 801, "Invalid page size or page number") from None
        if not 10 <= page_size <= 1000:
            raise ApiError(400, 801, "Invalid Page Size: it must be between 10 and 1000")
        order_field = (query.get("orderfield") or "email").lower()
        if order_field not in ("email", "name", "date"):
            order_field = "email"
        direction = (query.get("orderdirection") or "asc").lower()
        if direction not in ("asc", "desc"):
            direction = "asc"
        return page, page_size, order_field, direction

    @staticmethod
    def _page_of(
        results: list, total: int, page: int, page_size: int, order_field: str, direction: str
    ) -> Response:
        """The paged envelope (§3); a page past the end has empty ``Results``."""
        return json_response(
            200,
            {
                "Results": results,
                "ResultsOrderedBy": order_field,
                "OrderDirection": direction,
                "PageNumber": page,
                "PageSize": page_size,
                "RecordsOnThisPage": len(results),
                "TotalNumberOfRecords": total,
                "NumberOfPages": -(-total // page_size),
            },
        )

    def _offset(self, client: Client) -> timedelta:
        return zone_offset(client.time_zone or self.settings.time_zone)

    def _owned_client(self, caller: Caller, client_id: str) -> Client:
        client = self.clients.get(client_id.lower())
        if client is None or client.account_id != caller.account.id:
            raise ApiError(400, 102, "Invalid ClientID")
        return client

    def get_client(self, request: Request, caller: Caller, client_id: str) -> Response:
        """As the vendor's client_details fixture, shortened: ``BasicDetails.TimeZone``."""
        with self.lock:
            client = self._owned_client(caller, client_id)
            return json_response(
                200,
                {
                    "ApiKey": "",
                    "BasicDetails": {
                        "ClientID": client.id,
                        "CompanyName": client.name,
                        "Country": "",
                        "TimeZone": client.time_zone or self.settings.time_zone,
                    },
                    "BillingDetails": {},
                },
            )

    def get_suppression_list(self, request: Request, caller: Caller, client_id: str) -> Response:
        """``GET /clients/{id}/suppressionlist.json``: paged, no date filter (§11)."""
        page, page_size, order_field, direction = self._paging(request.query)
        with self.lock:
            client = self._owned_client(caller, client_id)
            offset = self._offset(client)
            entries = [
                (lower, client.suppressed[lower], *client.suppressions[lower])
                for lower in client.suppressed
            ]
        if order_field == "date":
            entries.sort(key=lambda e: (e[2], e[0]), reverse=direction == "desc")
        else:
            entries.sort(key=lambda e: e[0], reverse=direction == "desc")
        start = (page - 1) * page_size
        results = [
            {
                "SuppressionReason": reason,
                "EmailAddress": email,
                "Date": in_zone(at, offset),
                "State": "Suppressed",
            }
            for _lower, email, at, reason in entries[start : start + page_size]
        ]
        return self._page_of(results, len(entries), page, page_size, order_field, direction)

    # -- campaigns --------------------------------------------------------------------------

    def get_campaigns(self, request: Request, caller: Caller, client_id: str) -> Response:
        """``GET /clients/{id}/campaigns.json``: the client's sent campaigns, paged (§11)."""
        query = request.query
        page, page_size, _order_field, _direction = self._paging(query)
        direction = (query.get("orderdirection") or "desc").lower()
        if direction not in ("asc", "desc"):
            direction = "desc"
        tags = {tag.strip().lower() for tag in (query.get("tags") or "").split(",") if tag.strip()}
        with self.lock:
            client = self._owned_client(caller, client_id)
            offset = self._offset(client)
            first = self._day_bound(query.get("sentfromdate"), offset)
            last = self._day_bound(query.get("senttodate"), offset, next_day=True)
            campaigns = [
                campaign
                for campaign in (self.campaigns[i] for i in client.campaign_ids)
                if (not first or campaign.sent_at >= first)
                and (not last or campaign.sent_at < last)
                and (not tags or tags & {tag.lower() for tag in campaign.tags})
            ]
            campaigns.sort(key=lambda c: (c.sent_at, c.id), reverse=direction == "desc")
            start = (page - 1) * page_size
            results = [c.as_api(offset) for c in campaigns[start : start + page_size]]
        return self._page_of(results, len(campaigns), page, page_size, "SentDate", direction)

    def get_campaign_spam(self, request: Request, caller: Caller, campaign_id: str) -> Response:
        """``GET /campaigns/{id}/spam.json``: the campaign's spam complaints, paged (§11)."""
        query = request.query
        page, page_size, _order_field, direction = self._paging(query)
        order_field = "email" if (query.get("orderfield") or "").lower() == "email" else "date"
        with self.lock:
            campaign = self.campaigns.get(campaign_id.lower())
            client = self.clients.get(campaign.client_id) if campaign else None
            if campaign is None or client is None or client.account_id != caller.account.id:
                raise ApiError(400, 301, "Invalid CampaignID")
            offset = self._offset(client)
            since = self._day_bound(query.get("date"), offset)
            complaints = [c for c in campaign.complaints if not since or c[2] >= since]
        if order_field == "email":
            complaints.sort(key=lambda c: (c[0].lower(), c[2]), reverse=direction == "desc")
        else:
            complaints.sort(key=lambda c: (c[2], c[0].lower()), reverse=direction == "desc")
        start = (page - 1) * page_size
        results = [
            {
                "EmailAddress": email,
                "ListID": list_id,
                "Date": in_zone(at, offset, whole_minutes=True),
            }
            for email, list_id, at in complaints[start : start + page_size]
        ]
        return self._page_of(results, len(complaints), page, page_size, order_field, direction)

    @staticmethod
    def _day_bound(text: str | None, offset: timedelta, *, next_day: bool = False) -> str:
        """A ``date``-like parameter (a day, or a day and time, in a client's zone) as stored
        UTC text; "" when empty. ``next_day``: the start of the day after a bare day (an
        inclusive "to" date). 400 when unreadable."""
        text = (text or "").strip()
        if not text:
            return ""
        try:
            if next_day and len(text) == 10:
                text = (datetime.fromisoformat(text) + timedelta(days=1)).strftime(TIME_FORMAT)
            return from_zone(text, offset)
        except ValueError:
            message = "Invalid date: use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"
            raise ApiError(400, 400, message) from None

    def _new_campaign(
        self, client: Client, *, campaign_id: str = "", name: str = "", sent_at: str, lists=()
    ) -> Campaign:
        campaign_id = (campaign_id or uuid.uuid4().hex).lower()
        if campaign_id in self.campaigns:
            raise ControlError(f"campaign {campaign_id!r} exists already")
        campaign = Campaign(
            campaign_id,
            name or f"Campaign {len(client.campaign_ids) + 1}",
            client.id,
            sent_at,
            list(lists),
        )
        self.campaigns[campaign_id] = campaign
        client.campaign_ids.append(campaign_id)
        return campaign

    # -- subscribers ------------------------------------------------------------------------

    def _apply_details(self, target: SubscriberList, subscriber: Subscriber, entry: dict) -> None:
        """Write Name, ConsentToTrack and CustomFields; omitted fields keep their value."""
        if "name" in entry:
            subscriber.name = _text(entry["name"])
        consent = entry.get("consenttotrack")
        if consent is not None and str(consent).lower() != "unchanged":
            subscriber.consent = str(consent).capitalize()
        items = entry.get("customfields")
        if not items:
            return
        custom = subscriber.custom if subscriber.custom is not None else {}
        multi_seen: set[str] = set()
        for item in items:
            if not isinstance(item, dict):
                continue
            raw_key = _text(item.get("key"))
            key = derive_key(raw_key)
            if not key:
                continue
            norm = key.lower()
            defined = target.fields.get(norm)
            if defined is None and norm not in target.undefined_keys:
                target.undefined_keys[norm] = key
            if as_bool(item.get("clear")):
                custom.pop(norm, None)
                continue
            value = item.get("value")
            if value is None or value == "":
                continue
            if defined is not None and defined.data_type == "MultiSelectMany":
                # Repeating the key sends several values; the first one in a request replaces.
                if norm not in multi_seen:
                    multi_seen.add(norm)
                    custom[norm] = []
                custom[norm].append(_text(value))
            else:
                # Interned: bulk imports repeat the same values (cities, plans) a million times.
                custom[norm] = sys.intern(_text(value))
        subscriber.custom = custom or None

    def _write_member(
        self,
        target: SubscriberList,
        email: str,
        entry: dict,
        resubscribe: bool,
        now: str,
    ) -> tuple[str, tuple[int, str] | None]:
        """Add or update one member. Returns ("new" | "existing" | "failed", failure)."""
        lower = email.lower()
        if lower == email:
            lower = email  # one string object for key and address when already lower-case
        client = self.clients[target.client_id]
        subscriber = target.subscribers.get(lower)
        # An address on the client's suppression list is refused whatever Resubscribe says
        # (contract §10): only the person, or an unsuppress, lets it in again.
        refused = self._refused_value(target, entry)
        if refused is not None:
            return "failed", refused
        if subscriber is None:
            if lower in client.suppressed:
                return "failed", SUPPRESSED_FAILURE
            subscriber = target.subscribers[lower] = Subscriber(email, now)
            subscriber.consent = "No"  # "Unchanged" on a new subscriber is stored as No (§10)
            outcome = "new"
        else:
            if subscriber.state != ACTIVE:
                if not resubscribe:
                    return "failed", INACTIVE_FAILURES[subscriber.state]
                if lower in client.suppressed:
                    return "failed", SUPPRESSED_FAILURE
                subscriber.state = ACTIVE
                subscriber.state_changed = now
            outcome = "existing"
        self._apply_details(target, subscriber, entry)
        return outcome, None

    @staticmethod
    def _refused_value(target: SubscriberList, entry: dict) -> tuple[int, str] | None:
        """Why the list refuses one of the entry's custom field values, or None: a key the
        list does not define, a value over 250 characters, a number or date it cannot read,
        or an option the field does not list."""
        for item in entry.get("customfields") or []:
            if not isinstance(item, dict):
                continue
            raw_key = _text(item.get("key"))
            defined = target.fields.get(derive_key(raw_key).lower())
            if defined is None:
                return FIELD_VALUE_CODE, f"Custom field {raw_key} does not exist in this list"
            value = _text(item.get("value"))
            if as_bool(item.get("clear")) or value == "":
                continue
            problem = ""
            if len(value) > MAX_VALUE_LENGTH:
                problem = f"is longer than {MAX_VALUE_LENGTH} characters"
            elif defined.data_type == "Number" and not NUMBER_PATTERN.match(value):
                problem = "is not a number"
            elif defined.data_type == "Date" and not _valid_date(value):
                problem = f"is not a date between {FIRST_DATE} and {LAST_DATE} (YYYY/MM/DD)"
            elif defined.options and value.lower() not in {o.lower() for o in defined.options}:
                problem = "is not one of the field's options"
            if problem:
                return FIELD_VALUE_CODE, f"The value of custom field {defined.key} {problem}"
        return None

    def _email_param(self, request: Request) -> str:
        email = (request.query.get("email") or "").strip()
        if not email:
            raise ApiError(400, 1, "Invalid Email Address")
        return email

    def add_subscriber(self, request: Request, caller: Caller, list_id: str) -> Response:
        body = self._json_object(request)
        email = _text(body.get("emailaddress")).strip()
        with self.lock:
            target = self._owned_list(caller, list_id)
            if not is_valid_email(email):
                raise ApiError(400, 1, "Invalid Email Address")
            _, failure = self._write_member(
                target, email, body, as_bool(body.get("resubscribe")), _now_text()
            )
            target.version += 1
        if failure is not None:
            raise ApiError(400, failure[0], failure[1])
        return json_response(201, email)

    def get_subscriber(self, request: Request, caller: Caller, list_id: str) -> Response:
        email = self._email_param(request)
        with self.lock:
            target = self._owned_list(caller, list_id)
            subscriber = target.subscribers.get(email.lower())
            if subscriber is None:
                raise ApiError(400, 203, "Subscriber Not In List")
            offset = self._offset(self.clients[target.client_id])
            return json_response(200, target.api_subscriber(subscriber, offset))

    def update_subscriber(self, request: Request, caller: Caller, list_id: str) -> Response:
        old_email = self._email_param(request)
        body = self._json_object(request)
        new_email = _text(body.get("emailaddress") or old_email).strip()
        with self.lock:
            target = self._owned_list(caller, list_id)
            subscriber = target.subscribers.get(old_email.lower())
            if subscriber is None:
                raise ApiError(400, 203, "Subscriber Not In List")
            if not is_valid_email(new_email):
                raise ApiError(400, 1, "Invalid Email Address")
            refused = self._refused_value(target, body)
            if refused is not None:
                raise ApiError(400, *refused)
            now = _now_text()
            if new_email.lower() != old_email.lower():
                del target.subscribers[old_email.lower()]
                target.subscribers[new_email.lower()] = subscriber
            subscriber.email = new_email
            if subscriber.state != ACTIVE and as_bool(body.get("resubscribe")):
                if new_email.lower() in self.clients[target.client_id].suppressed:
                    raise ApiError(400, *SUPPRESSED_FAILURE)
                subscriber.state = ACTIVE
                subscriber.state_changed = now
            self._apply_details(target, subscriber, body)
            target.version += 1
        return empty_response(200)

    def import_subscribers(self, request: Request, caller: Caller, list_id: str) -> Response:
        body = self._json_object(request)
        submitted = body.get("subscribers")
        if not isinstance(submitted, list) or not submitted:
            raise ApiError(400, 212, "Subscriber Import had no subscribers to import")
        if len(submitted) > MAX_IMPORT_BATCH:
            raise ApiError(
                400,
                209,
                "Subscriber Import exceeded the maximum batch size. "
                f"You can only add {MAX_IMPORT_BATCH} subscribers in one call",
            )
        resubscribe = as_bool(body.get("resubscribe"))
        now = _now_text()
        failures: list[dict[str, Any]] = []
        duplicates: list[str] = []
        seen: set[str] = set()
        accepted: set[str] = set()
        counts = {"new": 0, "existing": 0, "failed": 0}
        with self.lock:
            target = self._owned_list(caller, list_id)
            for entry in submitted:
                if not isinstance(entry, dict):
                    entry = {}
                email = _text(entry.get("emailaddress")).strip()
                lower = email.lower()
                if lower in seen:
                    if email not in duplicates:
                        duplicates.append(email)
                    # A repeated address updates the first one's record (last details win).
                    if lower in accepted:
                        self._apply_details(target, target.subscribers[lower], entry)
                    continue
                seen.add(lower)
                if not is_valid_email(email):
                    failures.append(
                        {"EmailAddress": email, "Code": 1, "Message": "Invalid Email Address"}
                    )
                    continue
                outcome, failure = self._write_member(target, email, entry, resubscribe, now)
                counts[outcome] += 1
                if failure is not None:
                    failures.append(
                        {"EmailAddress": email, "Code": failure[0], "Message": failure[1]}
                    )
                else:
                    accepted.add(lower)
            target.version += 1
        result = {
            "FailureDetails": failures,
            "TotalUniqueEmailsSubmitted": len(seen),
            "TotalExistingSubscribers": counts["existing"],
            "TotalNewSubscribers": counts["new"],
            "DuplicateEmailsInSubmission": duplicates,
        }
        if failures:
            raise ApiError(400, 210, "Subscriber Import had some failures", result_data=result)
        return json_response(201, result)

    def unsubscribe_subscriber(self, request: Request, caller: Caller, list_id: str) -> Response:
        body = self._json_object(request)
        email = _text(body.get("emailaddress")).strip()
        lower = email.lower()
        with self.lock:
            target = self._owned_list(caller, list_id)
            subscriber = target.subscribers.get(lower)
            if subscriber is None:
                raise ApiError(400, 203, "Subscriber Not In List")
            self._unsubscribe(target, subscriber, _now_text())
        return empty_response(200)

    def _unsubscribe(self, target: SubscriberList, subscriber: Subscriber, now: str) -> None:
        """Unsubscribe as the list's ``UnsubscribeSetting`` says: ``AllClientLists`` also
        unsubscribes the address in the client's other lists and suppresses it."""
        self._set_state(target, subscriber, UNSUBSCRIBED, now)
        if target.unsubscribe_setting == "AllClientLists":
            client = self.clients[target.client_id]
            client.suppress(subscriber.email, SUPPRESSION_REASONS["unsubscribed"], now)
            lower = subscriber.email.lower()
            for other_id in client.list_ids:
                other = self.lists[other_id]
                member = other.subscribers.get(lower)
                if member is not None and member.state in (ACTIVE, UNCONFIRMED):
                    self._set_state(other, member, UNSUBSCRIBED, now)

    def delete_subscriber(self, request: Request, caller: Caller, list_id: str) -> Response:
        email = self._email_param(request)
        with self.lock:
            target = self._owned_list(caller, list_id)
            subscriber = target.subscribers.get(email.lower())
            if subscriber is None:
                raise ApiError(400, 203, "Subscriber Not In List")
            self._set_state(target, subscriber, DELETED, _now_text())
        return empty_response(200)

    @staticmethod
    def _set_state(target: SubscriberList, subscriber: Subscriber, state: str, now: str) -> None:
        if subscriber.state != state:
            subscriber.state = state
            subscriber.state_changed = now
        target.version += 1

    # -- control: state, seed, revoke, config actions -----------------------------------------

    def snapshot(self, query: dict[str, str]) -> dict[str, Any]:
        """``GET /_fake/state[?list=ID][&summary=1][&email=ADDRESS]``."""
        only_list = (query.get("list") or "").lower()
        summary = as_bool(query.get("summary"))
        only_email = (query.get("email") or "").lower()
        now = time.time()
        with self.lock:
            lists = {}
            for list_id, found in self.lists.items():
                if only_list and list_id != only_list:
                    continue
                entry: dict[str, Any] = {
                    **found.details(),
                    "ClientID": found.client_id,
                    "CustomFields": [f.as_api() for f in found.fields.values()],
                    "counts": found.counts(),
                }
                if only_email:
                    member = found.subscribers.get(only_email)
                    entry["subscribers"] = (
                        {only_email: found.state_subscriber(member)} if member else {}
                    )
                elif not summary:
                    entry["subscribers"] = {
                        lower: found.state_subscriber(s) for lower, s in found.subscribers.items()
                    }
                lists[found.id] = entry
            return {
                "kind": self.kind,
                "applications": [
                    {"client_id": a.client_id, "name": a.name, "redirect_uris": a.redirect_uris}
                    for a in self.applications.values()
                ],
                "accounts": [
                    {
                        "id": a.id,
                        "name": a.name,
                        "api_keys": sorted(a.api_keys),
                        "client_ids": list(a.client_ids),
                    }
                    for a in self.accounts.values()
                ],
                "clients": {
                    c.id: {
                        "ClientID": c.id,
                        "Name": c.name,
                        "account_id": c.account_id,
                        "list_ids": list(c.list_ids),
                        "suppressed": sorted(c.suppressed.values()),
                        "TimeZone": c.time_zone or self.settings.time_zone,
                        "campaigns": {
                            self.campaigns[i].id: {
                                "Name": self.campaigns[i].name,
                                "sent_at": self.campaigns[i].sent_at,
                                "list_ids": list(self.campaigns[i].list_ids),
                                "complaints": len(self.campaigns[i].complaints),
                            }
                            for i in c.campaign_ids
                        },
                    }
                    for c in self.clients.values()
                },
                "lists": lists,
                "oauth": {
                    "pending_codes": len(self.codes),
                    "grants": [
                        {
                            "account_id": g.account_id,
                            "client_id": g.client_id,
                            "scopes": g.scopes,
                            "revoked": g.revoked,
                            "refresh_token": g.refresh_token,
                            "access_tokens": [
                                {
                                    "access_token": t.token,
                                    "expires_in": max(0, int(t.expires_at - now)),
                                    "expired": now >= t.expires_at,
                                }
                                for t in g.access_tokens
                            ],
                        }
                        for g in self.grants
                    ],
                },
                "stats": self.stats_snapshot(),
                "config": self.current_config(),
            }

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/seed``: add applications and accounts; existing ids are extended.

        Shape (all optional)::

            {"applications": [{"client_id", "client_secret", "name", "redirect_uris": []}],
             "accounts": [{"id", "name", "api_key" | "api_keys": [],
                           "issue_token": true, "scopes": [...],
                           "tokens": [{"access_token", "refresh_token", "expires_in"}],
                           "clients": [{"id", "name", "suppressed": ["a@x.com"],
                                        "campaigns": [{"id", "name", "sent_at",
                                                       "list_ids", "tags"}],
                                        "lists": [{"id", "title",
                                                   "unsubscribe_setting", "confirmed_opt_in",
                                                   "custom_fields": [{"FieldName", "DataType",
                                                                      "Options"}],
                                                   "subscribers": [{"EmailAddress", "Name",
                                                                    "State", "CustomFields",
                                                                    "ConsentToTrack"}]}]}]}]}

        Returns the same tree with every id filled in and the issued tokens.
        """
        result: dict[str, Any] = {"applications": [], "accounts": []}
        try:
            with self.lock:
                for spec in body.get("applications") or []:
                    application = Application(
                        spec.get("client_id") or secrets.token_hex(8),
                        spec.get("client_secret") or secrets.token_urlsafe(16),
                        spec.get("name") or "Test Application",
                        list(spec.get("redirect_uris") or []),
                    )
                    self.applications[application.client_id] = application
                    result["applications"].append(
                        {
                            "client_id": application.client_id,
                            "client_secret": application.client_secret,
                        }
                    )
                for spec in body.get("accounts") or []:
                    result["accounts"].append(self._seed_account(spec))
        except (AttributeError, TypeError, KeyError, BadRequestBody) as error:
            raise ControlError(f"bad seed: {error!r}") from error
        return result

    def _seed_account(self, spec: dict[str, Any]) -> dict[str, Any]:
        account_id = str(spec.get("id") or uuid.uuid4().hex)
        account = self.accounts.get(account_id)
        if account is None:
            account = self.accounts[account_id] = Account(account_id, spec.get("name") or "Account")
        keys = list(spec.get("api_keys") or []) + ([spec["api_key"]] if spec.get("api_key") else [])
        for key in keys:
            account.api_keys.add(key)
            self.api_keys[key] = account.id
        tokens = []
        if spec.get("issue_token") or spec.get("tokens"):
            client_id = next(iter(self.applications), "seeded")
            grant = Grant(
                account.id,
                client_id,
                list(spec.get("scopes") or ["ManageLists", "ImportSubscribers"]),
            )
            self.grants.append(grant)
            for token_spec in spec.get("tokens") or [{}]:
                tokens.append(
                    self._issue_tokens(
                        grant,
                        access_token=token_spec.get("access_token"),
                        refresh_token=token_spec.get("refresh_token"),
                        lifetime=token_spec.get("expires_in"),
                    )
                )
        clients = [
            self._seed_client(account, client_spec) for client_spec in spec.get("clients") or []
        ]
        return {
            "id": account.id,
            "name": account.name,
            "api_keys": sorted(account.api_keys),
            "tokens": tokens,
            "clients": clients,
        }

    def _seed_client(self, account: Account, spec: dict[str, Any]) -> dict[str, Any]:
        client_id = str(spec.get("id") or uuid.uuid4().hex).lower()
        client = self.clients.get(client_id)
        if client is None:
            client = self.clients[client_id] = Client(
                client_id, spec.get("name") or "Client", account.id
            )
            account.client_ids.append(client_id)
        if spec.get("time_zone"):
            client.time_zone = str(spec["time_zone"])
        for email in spec.get("suppressed") or []:
            client.suppress(email, SUPPRESSION_REASONS["suppressed"], _now_text())
        lists = [self._seed_list(client, list_spec) for list_spec in spec.get("lists") or []]
        campaigns = [
            self._seed_campaign(client, campaign_spec).id
            for campaign_spec in spec.get("campaigns") or []
        ]
        return {"id": client.id, "name": client.name, "lists": lists, "campaigns": campaigns}

    def _seed_campaign(self, client: Client, spec: dict[str, Any]) -> Campaign:
        """A sent campaign: ``{"id", "name", "sent_at" (ISO time, no zone = UTC; default
        now), "list_ids": [...], "tags": [...]}``, all optional."""
        sent_at = _now_text()
        if spec.get("sent_at"):
            try:
                when = datetime.fromisoformat(str(spec["sent_at"]).replace("Z", "+00:00"))
            except ValueError:
                message = f"sent_at must be an ISO 8601 time: {spec['sent_at']!r}"
                raise ControlError(message) from None
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            sent_at = when.astimezone(UTC).strftime(TIME_FORMAT)
        campaign = self._new_campaign(
            client,
            campaign_id=str(spec.get("id") or ""),
            name=str(spec.get("name") or ""),
            sent_at=sent_at,
            lists=[str(list_id).lower() for list_id in spec.get("list_ids") or []],
        )
        campaign.tags = [str(tag) for tag in spec.get("tags") or []]
        return campaign

    def _seed_list(self, client: Client, spec: dict[str, Any]) -> dict[str, Any]:
        list_id = str(spec.get("id") or uuid.uuid4().hex).lower()
        found = self.lists.get(list_id)
        if found is None:
            found = self.lists[list_id] = SubscriberList(
                list_id, spec.get("title") or "List", client.id
            )
            client.list_ids.append(list_id)
        setting = spec.get("unsubscribe_setting")
        if setting:
            if setting not in UNSUBSCRIBE_SETTINGS:
                raise ControlError(f"unsubscribe_setting must be one of {UNSUBSCRIBE_SETTINGS}")
            found.unsubscribe_setting = setting
        found.confirmed_opt_in = as_bool(spec.get("confirmed_opt_in"), found.confirmed_opt_in)
        for field_spec in lowercase_keys_deep(spec.get("custom_fields") or []):
            try:
                self._add_custom_field(found, field_spec)
            except ApiError as error:
                raise ControlError(f"custom field {field_spec}: {error.message}") from error
        now = _now_text()
        for entry in lowercase_keys_deep(spec.get("subscribers") or []):
            email = _text(entry.get("emailaddress")).strip()
            state = next(
                (s for s in STATES if s.lower() == _text(entry.get("state", ACTIVE)).lower()), None
            )
            if not email or state is None:
                raise ControlError(
                    f"seeded subscriber needs EmailAddress and a valid State: {entry}"
                )
            subscriber = found.subscribers.get(email.lower()) or Subscriber(email, now)
            found.subscribers[email.lower()] = subscriber
            subscriber.state = state
            self._apply_details(found, subscriber, entry)
        found.version += 1
        return {"id": found.id, "title": found.title}

    def revoke(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/revoke``: ``{"access_token"|"refresh_token"|"api_key"|"account_id": ...}``
        or ``{"all": true}``. Revoking a token revokes its whole grant (both token kinds → 122 /
        invalid_grant); revoking an API key makes it unknown (→ 100)."""
        revoked = {"grants": 0, "api_keys": 0}
        with self.lock:
            grants: list[Grant] = []
            if as_bool(body.get("all")):
                grants = list(self.grants)
            if body.get("access_token") in self.access_tokens:
                grants.append(self.access_tokens[body["access_token"]].grant)
            if body.get("refresh_token") in self.refresh_tokens:
                grants.append(self.refresh_tokens[body["refresh_token"]])
            account_id = body.get("account_id")
            if account_id:
                grants.extend(g for g in self.grants if g.account_id == account_id)
            keys = [body["api_key"]] if body.get("api_key") else []
            if account_id in self.accounts:
                keys.extend(self.accounts[account_id].api_keys)
            for grant in grants:
                if not grant.revoked:
                    grant.revoked = True
                    revoked["grants"] += 1
            for key in keys:
                owner = self.api_keys.pop(key, None)
                if owner is not None:
                    self.accounts[owner].api_keys.discard(key)
                    revoked["api_keys"] += 1
        if not any(revoked.values()):
            raise ControlError(
                "nothing matched; give access_token, refresh_token, api_key, account_id or all"
            )
        return {"revoked": revoked}

    def delete_list(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/delete_list {"list_id": ...}``: from then on the list id is unknown
        (``400 {"Code":101,"Message":"Invalid ListID"}``) and the list leaves its client."""
        list_id = str(body.get("list_id") or "")
        with self.lock:
            found = self.lists.pop(list_id.lower(), None)
            if found is None:
                raise ControlError(f"no list {list_id!r}")
            client = self.clients.get(found.client_id)
            if client is not None:
                client.list_ids = [i for i in client.list_ids if i.lower() != found.id.lower()]
        return {"deleted": found.id}

    def consent(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/consent``: people opt out as they would at Campaign Monitor.

        ``{"emails": [...], "state": "unsubscribed|bounced|complained|suppressed",
        "list_id": optional, "client_id": optional, "at": optional ISO time (default now; no
        zone = UTC), "reason": optional SuppressionReason for "suppressed", "campaign_id":
        optional, for "complained"}``.

        - unsubscribed: Unsubscribed in the list (created there if new to it), following its
          ``UnsubscribeSetting`` (``AllClientLists`` also suppresses with the reason
          "Unsubscribed");
        - bounced: Bounced in the list;
        - complained: a spam complaint about a campaign (``campaign_id``: one the client
          sent, or a new one sent at ``at`` with that id; without it, a new campaign of each
          client, sent at ``at``, per call), listed by its ``spam.json`` with the list, and
          Unsubscribed in the list and on the client's suppression list as "Spam Complaint"
          (the contract has no complaint read for lists, §11). An address in no list (with
          ``client_id``) is only suppressed;
        - suppressed: on the client's suppression list ("Manually Added", or ``reason``).

        Without ``list_id``, every list that holds the address; ``client_id`` names the
        client of an address that no list holds (suppression list only). Returns the lists
        touched and, for complaints, the campaigns (``"campaigns": [ids]``).
        """
        emails, state, when = consent_request(body, CONSENT_STATES)
        at = when.astimezone(UTC).strftime(TIME_FORMAT)
        campaign_id = str(body.get("campaign_id") or "").lower()
        complaints: dict[str, Campaign] = {}  # client id → the campaign complained about
        with self.lock:
            only = str(body.get("list_id") or "").lower()
            if only and only not in self.lists:
                raise ControlError(f"no list {body['list_id']!r}")
            client_id = str(body.get("client_id") or "").lower()
            if client_id and client_id not in self.clients:
                raise ControlError(f"no client {body['client_id']!r}")
            touched: set[str] = set()
            for email in emails:
                lower = email.lower()
                targets = (
                    [self.lists[only]]
                    if only
                    else [found for found in self.lists.values() if lower in found.subscribers]
                )
                if not targets and not client_id:
                    raise ControlError(f"no list holds {email}; give list_id or client_id")
                clients = {client_id} if client_id else set()
                for target in targets:
                    clients.add(target.client_id)
                    touched.add(target.id)
                    if state == "suppressed":
                        continue
                    member = target.subscribers.get(lower)
                    if member is None:
                        member = target.subscribers[lower] = Subscriber(email, at)
                    if state == "complained":
                        campaign = self._complained_about(complaints, target, campaign_id, at)
                        campaign.complaints.append((member.email, target.id, at))
                    if state == "unsubscribed":
                        self._unsubscribe(target, member, at)
                    else:
                        self._set_state(
                            target, member, BOUNCED if state == "bounced" else UNSUBSCRIBED, at
                        )
                # A list's unsubscribe suppresses as its setting says, a bounce stays in the
                # list; complaints and suppressions (and anything of an address in no list)
                # go on the suppression list.
                if state in ("complained", "suppressed") or not targets:
                    reason = SUPPRESSION_REASONS[state]
                    if state == "suppressed":
                        reason = str(body.get("reason") or reason)
                    for owner in clients:
                        self.clients[owner].suppress(email, reason, at)
        result: dict[str, Any] = {"state": state, "emails": len(emails), "lists": sorted(touched)}
        if state == "complained":
            result["campaigns"] = sorted(campaign.id for campaign in complaints.values())
        return result

    def _complained_about(
        self, complaints: dict[str, Campaign], target: SubscriberList, campaign_id: str, at: str
    ) -> Campaign:
        """The campaign a complaint of one ``consent`` call is about, in ``target``'s client:
        the one named (made, sent at ``at``, when the client has none with that id), or one
        made for the call. The campaign is then counted as sent to ``target``."""
        client = self.clients[target.client_id]
        campaign = complaints.get(client.id)
        if campaign is None and campaign_id:
            campaign = self.campaigns.get(campaign_id)
            if campaign is not None and campaign.client_id != client.id:
                raise ControlError(f"campaign {campaign_id!r} belongs to another client")
        if campaign is None:
            campaign = self._new_campaign(client, campaign_id=campaign_id, sent_at=at)
        complaints[client.id] = campaign
        if target.id not in campaign.list_ids:
            campaign.list_ids.append(target.id)
        return campaign

    def config_action(self, name: str, value: Any) -> dict[str, Any] | None:
        """``{"expire_tokens": true}`` expires every access token issued so far (→ 401/121);
        a token string or a list of them expires only those. ``{"expire_tokens_after": N}``
        lets N more Bearer requests through, then expires every access token issued until then
        (a token that runs out in the middle of a run, at a request the test chooses).
        Refresh tokens keep working."""
        if name == "expire_tokens_after":
            try:
                self.expire_tokens_countdown = max(0, int(value))
            except (TypeError, ValueError) as error:
                raise ControlError("expire_tokens_after must be a number of requests") from error
            return {"after": self.expire_tokens_countdown}
        if name != "expire_tokens":
            return None
        if value is True or (isinstance(value, str) and value.lower() == "true"):
            targets = list(self.access_tokens.values())
        else:
            wanted = [value] if isinstance(value, str) else list(value or [])
            targets = [self.access_tokens[t] for t in wanted if t in self.access_tokens]
        return {"expired": self._expire(targets)}

    @staticmethod
    def _expire(tokens: list[AccessToken]) -> int:
        now = time.time()
        for token in tokens:
            token.expires_at = min(token.expires_at, now)
        return len(tokens)


def _valid_date(value: str) -> bool:
    found = DATE_PATTERN.match(value)
    if found is None:
        return False
    try:
        datetime(*(int(part) for part in found.groups()))
    except ValueError:
        return False
    return FIRST_DATE <= "/".join(found.groups()) <= LAST_DATE
