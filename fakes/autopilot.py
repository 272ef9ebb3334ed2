"""Fake Autopilot ("Autopilot Journeys") REST API v1: contacts, lists, paging and its rate limit.

Contract: /work/shared/spec/autopilot_api.md. Where the contract is uncertain the fake picks one
answer and says so here (and in fakes/README.md):

- Auth comes before routing for every ``/v1`` path: no ``autopilotapikey`` header (or an empty
  one) → 400, an unknown key → 401. Each API key belongs to one account; accounts do not see each
  other's contacts or lists.
- Rate limit per API key: a token bucket of ``--rate-limit`` requests a second (default 5,
  bursts of 5), answered ``429 {"error":"Too Many Requests","message":"You have exceeded your
  request rate of 5 r/s."}``; no rate headers, ``Retry-After`` only with ``--retry-after``.
- ``_autopilot_list`` naming a list the account does not have fails the whole request with
  ``404 {"error":"Not Found","message":"List could not be found."}`` and writes nothing.
- Custom field keys must be ``<type>--<Name>`` with type string, integer, float, date or boolean
  (otherwise 400, nothing written); ``--`` inside the name stands for a space. The first
  contact sent with a new key creates the field (there is no create call, §7); at most 200
  fields per account and names of at most 100 characters (else 400, nothing written).
- Custom values must fit the key's type, else 400 and nothing written: string → a JSON string,
  integer → a JSON integer, float → a JSON number, boolean → true/false, date → ISO 8601 text
  (``2016-11-22`` or ``2016-11-22T00:00:00.000Z``). ``null`` clears the value.
- Bulk ``POST /contacts`` takes 0..100 contacts (more → 400); contacts are upserted in order,
  keyed on Email case-insensitively; ``email_contact_map`` keys are the addresses as sent.
  Contacts without Email are always created anew (as the vendor warns).
- ``DELETE /contact/{id}``, ``POST /contact/{id}/unsubscribe`` and list-membership writes answer
  200 with an empty body, or ``{"not_modified": true}`` when membership was already as asked.
  ``GET /list/{id}/contact/{id}`` answers 200 with an empty body for a member, else 404.
- Routing misses use the restify shape the live API showed: unknown path → 404
  ``{"code":"ResourceNotFound",...}``, wrong method → 405 ``{"code":"MethodNotAllowedError",
  "message":"PUT is not allowed"}``. ``--error-style restify`` switches every error to that shape.
- Paging: 100 contacts a page in creation order; the bookmark is the last contact id of the page
  and is omitted on the last page; an unknown bookmark → 400.
- Consent read-back (§8): a contact carries ``"unsubscribed": true`` only when unsubscribed, and
  ``mail_unsubscribed``, ``mail_hardbounced``, ``mail_complained`` only when it has such events,
  each ``{"batchdelivery_<UUID>_<ms>-<uuid>": <epoch ms>}``. ``POST /_fake/consent`` adds them
  (see ``consent``) and sets ``updated_at`` to the event's time.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fakes.server import (
    BadRequestBody,
    ControlError,
    FakeApp,
    Request,
    Response,
    as_bool,
    consent_request,
    empty_response,
    format_rate,
    json_response,
    match_route,
    option,
    reason_phrase,
)

API_PREFIX = "/v1"
MAX_BULK_CONTACTS = 100
PAGE_SIZE = 100
CUSTOM_FIELD_TYPES = ("string", "integer", "float", "date", "boolean")
CUSTOM_KEY_PATTERN = re.compile(r"^(string|integer|float|date|boolean)--(.+)$")
MAX_CUSTOM_FIELDS = 200
MAX_FIELD_NAME = 100
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
STANDARD_FIELDS = (
    "Email",
    "FirstName",
    "LastName",
    "Twitter",
    "Salutation",
    "Company",
    "NumberOfEmployees",
    "Title",
    "Industry",
    "Phone",
    "MobilePhone",
    "Fax",
    "Website",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "owner_name",
    "LeadSource",
    "Status",
    "LinkedIn",
)
# Standard keys are matched case-insensitively and stored under their documented spelling.
CANONICAL_FIELDS = {name.lower(): name for name in STANDARD_FIELDS}
RESTIFY_CODES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    429: "TooManyRequestsError",
    500: "InternalServerError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}
DEMO_NAMESPACE = uuid.UUID("0b9e3c52-8f7a-4d2e-b1c6-5a4d3e2f1a09")


@dataclass
class AutopilotSettings:
    api_keys: list[str] = field(
        default_factory=lambda: ["demo-autopilot-key"],
        metadata={
            "help": "API key of the demo account; repeat the flag for several keys.",
            "startup_only": True,
            "flag": "--api-key",
        },
    )
    rate_limit: float = option(5.0, "Requests per second per API key; 0 disables the limit.")
    retry_after: bool = option(False, "Send Retry-After (seconds) with rate-limit 429s.")
    error_style: str = option(
        "standard",
        'Error bodies: standard {"error","message"} or restify {"code","message"}.',
        choices=("standard", "restify"),
    )


#: ``POST /_fake/consent`` states, and the delivery events each adds.
CONSENT_EVENTS = {
    "unsubscribed": "mail_unsubscribed",
    "bounced": "mail_hardbounced",
    "complained": "mail_complained",
}


def _timestamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def delivery_id(epoch_ms: int) -> str:
    """As the contract's example: ``batchdelivery_<UUID>_<ms>-<uuid>``."""
    return f"batchdelivery_{str(uuid.uuid4()).upper()}_{epoch_ms}-{uuid.uuid4()}"


def new_contact_id() -> str:
    return f"person_{str(uuid.uuid4()).upper()}"


def demo_list_id(title: str) -> str:
    """Stable ids for the demo lists, so the app's saved choice survives a fake restart."""
    return f"contactlist_{str(uuid.uuid5(DEMO_NAMESPACE, title)).upper()}"


def new_list_id() -> str:
    return f"contactlist_{str(uuid.uuid4()).upper()}"


class OrderedIds:
    """Ids in insertion order with O(1) add/remove/contains and bookmark paging.

    Removal leaves a hole (None) and keeps the id's position, so a bookmark naming a contact
    removed meanwhile still resolves. Re-adding appends at the end.
    """

    def __init__(self) -> None:
        self._order: list[str | None] = []
        self._positions: dict[str, int] = {}
        self.count = 0

    def __contains__(self, item: str) -> bool:
        position = self._positions.get(item)
        return position is not None and self._order[position] == item

    def __iter__(self) -> Iterator[str]:
        return (item for item in self._order if item is not None)

    def add(self, item: str) -> bool:
        if item in self:
            return False
        self._positions[item] = len(self._order)
        self._order.append(item)
        self.count += 1
        return True

    def remove(self, item: str) -> bool:
        if item not in self:
            return False
        self._order[self._positions[item]] = None
        self.count -= 1
        return True

    def page(self, bookmark: str | None, size: int) -> tuple[list[str], str | None]:
        """The ``size`` ids after ``bookmark`` and the next bookmark (None on the last page)."""
        if bookmark is None:
            start = 0
        elif bookmark in self._positions:
            start = self._positions[bookmark] + 1
        else:
            raise KeyError(bookmark)
        page: list[str] = []
        index = start
        while index < len(self._order) and len(page) < size:
            item = self._order[index]
            if item is not None:
                page.append(item)
            index += 1
        more = any(item is not None for item in self._order[index:])
        return page, (page[-1] if page and more else None)


class Contact:
    __slots__ = (
        "contact_id",
        "created_at",
        "custom",
        "fields",
        "lists",
        "mail",
        "unsubscribed",
        "updated_at",
    )

    def __init__(self, contact_id: str, now: str) -> None:
        self.contact_id = contact_id
        self.fields: dict[str, Any] = {}
        self.custom: dict[str, Any] = {}
        self.lists: set[str] = set()
        self.unsubscribed = False
        # "mail_unsubscribed" etc. → {delivery id: epoch ms}; None until the first event.
        self.mail: dict[str, dict[str, int]] | None = None
        self.created_at = now
        self.updated_at = now

    @property
    def email(self) -> str | None:
        email = self.fields.get("Email")
        return str(email) if email else None

    def as_api(self) -> dict[str, Any]:
        """As the recorded responses: fields, ids, timestamps, lists and ``custom_fields``."""
        name = " ".join(
            str(self.fields[k]) for k in ("FirstName", "LastName") if self.fields.get(k)
        )
        contact = {
            **self.fields,
            "contact_id": self.contact_id,
            "Name": name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "api_originated": True,
            "lists": sorted(self.lists),
            "custom_fields": [
                {"kind": kind, "value": value, "fieldType": field_type, "deleted": False}
                for key, value in self.custom.items()
                for field_type, kind in [split_custom_key(key)]
            ],
            **{kind: dict(events) for kind, events in (self.mail or {}).items()},
        }
        if self.unsubscribed:  # present only when true (§8)
            contact["unsubscribed"] = True
        return contact

    def as_state(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            **self.fields,
            "custom": dict(self.custom),
            "unsubscribed": self.unsubscribed,
            "lists": sorted(self.lists),
            **{kind: dict(events) for kind, events in (self.mail or {}).items()},
        }


def split_custom_key(key: str) -> tuple[str, str]:
    """``"string--Test--Field"`` → ``("string", "Test Field")``."""
    match = CUSTOM_KEY_PATTERN.match(key)
    if match is None:
        raise ValueError(key)
    return match.group(1), match.group(2).replace("--", " ")


class ContactList:
    def __init__(self, list_id: str, title: str) -> None:
        self.list_id = list_id
        self.title = title
        self.members = OrderedIds()


class Account:
    def __init__(self, account_id: str, name: str) -> None:
        self.id = account_id
        self.name = name
        self.api_keys: set[str] = set()
        self.contacts: dict[str, Contact] = {}
        self.by_email: dict[str, str] = {}  # lower-cased email → contact id
        self.order = OrderedIds()
        self.lists: dict[str, ContactList] = {}
        self.custom_fields: dict[str, tuple[str, str]] = {}  # key → (name, type)

    def find_contact(self, id_or_email: str) -> Contact | None:
        contact = self.contacts.get(id_or_email)
        if contact is None and "@" in id_or_email:
            contact = self.contacts.get(self.by_email.get(id_or_email.lower(), ""))
        return contact

    def state_key(self, contact: Contact) -> str:
        return contact.email.lower() if contact.email else contact.contact_id


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


ROUTES = (
    ("GET", ("lists",), "get_lists", "GET /lists"),
    ("POST", ("list",), "create_list", "POST /list"),
    ("GET", ("list", "*", "contacts"), "get_list_contacts", "GET /list/{list_id}/contacts"),
    (
        "GET",
        ("list", "*", "contacts", "*"),
        "get_list_contacts",
        "GET /list/{list_id}/contacts/{bookmark}",
    ),
    ("GET", ("list", "*", "contact", "*"), "check_member", "GET /list/{list_id}/contact/{id}"),
    ("POST", ("list", "*", "contact", "*"), "add_member", "POST /list/{list_id}/contact/{id}"),
    (
        "DELETE",
        ("list", "*", "contact", "*"),
        "remove_member",
        "DELETE /list/{list_id}/contact/{id}",
    ),
    ("POST", ("contact",), "upsert_contact", "POST /contact"),
    ("POST", ("contacts",), "upsert_contacts", "POST /contacts"),
    ("GET", ("contacts",), "get_contacts", "GET /contacts"),
    ("GET", ("contacts", "custom_fields"), "get_custom_fields", "GET /contacts/custom_fields"),
    ("GET", ("contacts", "*"), "get_contacts", "GET /contacts/{bookmark}"),
    ("GET", ("contact", "*"), "get_contact", "GET /contact/{id}"),
    ("DELETE", ("contact", "*"), "delete_contact", "DELETE /contact/{id}"),
    (
        "POST",
        ("contact", "*", "unsubscribe"),
        "unsubscribe_contact",
        "POST /contact/{id}/unsubscribe",
    ),
)


class AutopilotFake(FakeApp):
    kind = "autopilot"
    api_prefix = API_PREFIX
    settings_class = AutopilotSettings
    settings: AutopilotSettings

    def _reset_state(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.api_keys: dict[str, str] = {}  # key → account id
        if self.demo:
            self.seed(
                {
                    "accounts": [
                        {
                            "id": "demo",
                            "name": "Demo Account",
                            "api_keys": self.settings.api_keys,
                            "lists": [
                                {"list_id": demo_list_id(title), "title": title}
                                for title in ("Newsletter", "Customers")
                            ],
                        }
                    ]
                }
            )

    # -- errors -----------------------------------------------------------------------------

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        if self.settings.error_style == "restify":
            payload = {"code": RESTIFY_CODES.get(status, "InternalServerError"), "message": message}
        else:
            payload = {"error": reason_phrase(status), "message": message}
        return json_response(status, payload, headers)

    def _rate_message(self) -> str:
        rate = self.settings.rate_limit or 5
        return f"You have exceeded your request rate of {format_rate(rate)} r/s."

    def burst_429_response(self) -> Response:
        limit = int(self.settings.rate_limit) or 5
        return self.error(429, self._rate_message(), self.burst_headers(limit))

    def server_error_response(self, status: int) -> Response:
        return self.error(status, "Injected server error")

    # -- request entry point ----------------------------------------------------------------

    def handle_api(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path.lower() != API_PREFIX and not path.lower().startswith(API_PREFIX + "/"):
            return json_response(
                404, {"code": "ResourceNotFound", "message": f"{request.path} does not exist"}
            )

        api_key = request.headers.get("autopilotapikey")
        if not api_key:
            return self.error(400, "No autopilotapikey header provided.")
        with self.lock:
            account_id = self.api_keys.get(api_key)
            account = self.accounts.get(account_id or "")
        if account is None:
            return self.error(401, "Provided autopilotapikey not valid.")

        if self.settings.rate_limit > 0:
            decision = self.limiter.acquire(api_key, self.settings.rate_limit)
            if not decision.allowed:
                headers = (
                    {"Retry-After": str(decision.reset_seconds)}
                    if self.settings.retry_after
                    else {}
                )
                return self.error(429, self._rate_message(), headers)

        segments = path[len(API_PREFIX) + 1 :].split("/")
        match = match_route(ROUTES, request.method, segments)
        if match is None:
            return json_response(
                404, {"code": "ResourceNotFound", "message": f"{request.path} does not exist"}
            )
        if match is True:
            return json_response(
                405,
                {"code": "MethodNotAllowedError", "message": f"{request.method} is not allowed"},
            )
        assert isinstance(match, tuple)
        handler_name, label, ids = match
        try:
            response: Response = getattr(self, handler_name)(request, account, *ids)
        except ApiError as error:
            response = self.error(error.status, error.message)
        except BadRequestBody as error:
            response = self.error(400, f"Invalid JSON body: {error}")
        response.endpoint = label
        return response

    @staticmethod
    def _json_object(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as error:
            raise BadRequestBody(str(error)) from error
        if not isinstance(body, dict):
            raise BadRequestBody("expected a JSON object")
        return body

    # -- lists ------------------------------------------------------------------------------

    def get_lists(self, request: Request, account: Account) -> Response:
        with self.lock:
            lists = [{"list_id": lst.list_id, "title": lst.title} for lst in account.lists.values()]
        return json_response(200, {"lists": lists})

    def create_list(self, request: Request, account: Account) -> Response:
        name = self._json_object(request).get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "A list name is required.")
        with self.lock:
            created = ContactList(new_list_id(), name)
            account.lists[created.list_id] = created
        return json_response(200, {"list_id": created.list_id})

    def _list(self, account: Account, list_id: str) -> ContactList:
        found = account.lists.get(list_id)
        if found is None:
            raise ApiError(404, "List could not be found.")
        return found

    def _contact(self, account: Account, id_or_email: str) -> Contact:
        contact = account.find_contact(id_or_email)
        if contact is None:
            raise ApiError(404, "Contact could not be found.")
        return contact

    def check_member(
        self, request: Request, account: Account, list_id: str, contact_ref: str
    ) -> Response:
        with self.lock:
            found = self._list(account, list_id)
            contact = self._contact(account, contact_ref)
            if contact.contact_id not in found.members:
                raise ApiError(404, "Contact could not be found.")
        return empty_response(200)

    def add_member(
        self, request: Request, account: Account, list_id: str, contact_ref: str
    ) -> Response:
        with self.lock:
            found = self._list(account, list_id)
            contact = self._contact(account, contact_ref)
            if not found.members.add(contact.contact_id):
                return json_response(200, {"not_modified": True})
            contact.lists.add(found.list_id)
        return empty_response(200)

    def remove_member(
        self, request: Request, account: Account, list_id: str, contact_ref: str
    ) -> Response:
        with self.lock:
            found = self._list(account, list_id)
            contact = self._contact(account, contact_ref)
            if not found.members.remove(contact.contact_id):
                return json_response(200, {"not_modified": True})
            contact.lists.discard(found.list_id)
        return empty_response(200)

    def get_list_contacts(
        self, request: Request, account: Account, list_id: str, bookmark: str | None = None
    ) -> Response:
        with self.lock:
            found = self._list(account, list_id)
            return self._page(account, found.members, bookmark)

    # -- contacts ---------------------------------------------------------------------------

    def get_contacts(
        self, request: Request, account: Account, bookmark: str | None = None
    ) -> Response:
        with self.lock:
            return self._page(account, account.order, bookmark)

    def _page(self, account: Account, ids: OrderedIds, bookmark: str | None) -> Response:
        try:
            page, next_bookmark = ids.page(bookmark, PAGE_SIZE)
        except KeyError:
            raise ApiError(400, "Invalid bookmark.") from None
        payload: dict[str, Any] = {
            "contacts": [account.contacts[contact_id].as_api() for contact_id in page],
            "total_contacts": ids.count,
        }
        if next_bookmark is not None:
            payload["bookmark"] = next_bookmark
        return json_response(200, payload)

    def get_custom_fields(self, request: Request, account: Account) -> Response:
        with self.lock:
            fields = [
                {"name": name, "fieldType": field_type}
                for name, field_type in account.custom_fields.values()
            ]
        return json_response(200, fields)

    def get_contact(self, request: Request, account: Account, contact_ref: str) -> Response:
        with self.lock:
            return json_response(200, self._contact(account, contact_ref).as_api())

    def delete_contact(self, request: Request, account: Account, contact_ref: str) -> Response:
        with self.lock:
            contact = self._contact(account, contact_ref)
            self._delete(account, contact)
        return empty_response(200)

    @staticmethod
    def _delete(account: Account, contact: Contact) -> None:
        del account.contacts[contact.contact_id]
        account.order.remove(contact.contact_id)
        if contact.email and account.by_email.get(contact.email.lower()) == contact.contact_id:
            del account.by_email[contact.email.lower()]
        for list_id in contact.lists:
            account.lists[list_id].members.remove(contact.contact_id)

    def unsubscribe_contact(self, request: Request, account: Account, contact_ref: str) -> Response:
        with self.lock:
            contact = self._contact(account, contact_ref)
            contact.unsubscribed = True
            contact.updated_at = _timestamp()
        return empty_response(200)

    def upsert_contact(self, request: Request, account: Account) -> Response:
        data = self._json_object(request).get("contact")
        with self.lock:
            self._validate(account, data)
            contact = self._upsert(account, data, _timestamp())
        return json_response(200, {"contact_id": contact.contact_id})

    def upsert_contacts(self, request: Request, account: Account) -> Response:
        contacts = self._json_object(request).get("contacts")
        if not isinstance(contacts, list):
            raise ApiError(400, "Request body must have a 'contacts' array.")
        if len(contacts) > MAX_BULK_CONTACTS:
            raise ApiError(
                400, f"Too many contacts: at most {MAX_BULK_CONTACTS} contacts per request."
            )
        contact_ids: list[str] = []
        email_map: dict[str, str] = {}
        now = _timestamp()
        with self.lock:
            for data in contacts:
                self._validate(account, data)
            for data in contacts:
                contact = self._upsert(account, data, now)
                contact_ids.append(contact.contact_id)
                if contact.email:
                    email_map[contact.email] = contact.contact_id
        return json_response(
            200,
            {
                "contact_ids": contact_ids,
                "email_contact_map": email_map,
                "_removeResultKeys": ["proposedContacts"],
            },
        )

    @staticmethod
    def _list_refs(data: dict[str, Any]) -> list[str]:
        value = data.get("_autopilot_list")
        if value is None or value == "":
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def _validate(self, account: Account, data: Any) -> None:
        """Check one contact before anything is written, so a bad batch changes nothing."""
        if not isinstance(data, dict):
            raise ApiError(400, "A contact must be a JSON object.")
        custom = data.get("custom")
        if custom is not None:
            if not isinstance(custom, dict):
                raise ApiError(400, "'custom' must be an object of '<type>--<Name>' keys.")
            for key, value in custom.items():
                if CUSTOM_KEY_PATTERN.match(key) is None:
                    raise ApiError(
                        400,
                        f"Invalid custom field key '{key}': expected '<type>--<Name>' with type "
                        f"one of {', '.join(CUSTOM_FIELD_TYPES)}.",
                    )
                field_type, name = split_custom_key(key)
                if len(name) > MAX_FIELD_NAME:
                    raise ApiError(
                        400, f"Custom field name too long: at most {MAX_FIELD_NAME} characters."
                    )
                full = len(account.custom_fields) >= MAX_CUSTOM_FIELDS
                if full and key not in account.custom_fields:
                    raise ApiError(
                        400, f"Too many custom fields: at most {MAX_CUSTOM_FIELDS} per account."
                    )
                if value is not None and not _fits(field_type, value):
                    raise ApiError(
                        400, f"Invalid value for custom field '{key}': not a {field_type}."
                    )
        for list_id in self._list_refs(data):
            if list_id not in account.lists:
                raise ApiError(404, "List could not be found.")

    def _upsert(self, account: Account, data: dict[str, Any], now: str) -> Contact:
        """Create or update the contact with this Email; fields given overwrite, others stay."""
        email = next((str(v) for k, v in data.items() if k.lower() == "email" and v), None)
        contact_id = account.by_email.get(email.lower()) if email else None
        contact = account.contacts.get(contact_id) if contact_id else None
        if contact is None:
            contact = Contact(new_contact_id(), now)
            account.contacts[contact.contact_id] = contact
            account.order.add(contact.contact_id)
        previous_email = contact.email
        for key, value in data.items():
            lowered = key.lower()
            if key == "custom":
                for custom_key, custom_value in value.items():
                    field_type, name = split_custom_key(custom_key)
                    account.custom_fields[custom_key] = (name, field_type)
                    if custom_value is None:
                        contact.custom.pop(custom_key, None)
                    else:
                        contact.custom[custom_key] = custom_value
            elif lowered == "unsubscribed":
                contact.unsubscribed = as_bool(value)
            elif key in ("_autopilot_list", "_NewEmail", "notify"):
                continue
            else:
                contact.fields[CANONICAL_FIELDS.get(lowered, key)] = value
        if data.get("_NewEmail"):
            contact.fields["Email"] = str(data["_NewEmail"])
        self._reindex_email(account, contact, previous_email)
        for list_id in self._list_refs(data):
            account.lists[list_id].members.add(contact.contact_id)
            contact.lists.add(list_id)
        contact.updated_at = now
        return contact

    @staticmethod
    def _reindex_email(account: Account, contact: Contact, previous_email: str | None) -> None:
        current = contact.email
        if (
            previous_email
            and previous_email.lower() != (current or "").lower()
            and account.by_email.get(previous_email.lower()) == contact.contact_id
        ):
            del account.by_email[previous_email.lower()]
        if current:
            account.by_email[current.lower()] = contact.contact_id

    # -- control ----------------------------------------------------------------------------

    def snapshot(self, query: dict[str, str]) -> dict[str, Any]:
        """``GET /_fake/state[?list=ID][&summary=1][&email=ADDRESS]``."""
        only_list = query.get("list") or ""
        summary = as_bool(query.get("summary"))
        only_email = (query.get("email") or "").lower()
        with self.lock:
            accounts = [
                self._account_state(account, only_list, summary, only_email)
                for account in self.accounts.values()
            ]
            return {
                "kind": self.kind,
                "accounts": accounts,
                "stats": self.stats_snapshot(),
                "config": self.current_config(),
            }

    @staticmethod
    def _account_state(
        account: Account, only_list: str, summary: bool, only_email: str
    ) -> dict[str, Any]:
        def contacts_by_email(contacts: Iterable[Contact]) -> dict[str, Any]:
            return {
                account.state_key(c): c.as_state()
                for c in contacts
                if not only_email or account.state_key(c) == only_email
            }

        lists = {}
        for found in account.lists.values():
            if only_list and found.list_id != only_list:
                continue
            entry: dict[str, Any] = {
                "list_id": found.list_id,
                "title": found.title,
                "count": found.members.count,
            }
            if not summary:
                entry["members"] = contacts_by_email(account.contacts[i] for i in found.members)
            lists[found.list_id] = entry
        state: dict[str, Any] = {
            "id": account.id,
            "name": account.name,
            "api_keys": sorted(account.api_keys),
            "counts": {
                "contacts": len(account.contacts),
                "unsubscribed": sum(c.unsubscribed for c in account.contacts.values()),
            },
            "custom_fields": [
                {"key": key, "name": name, "fieldType": field_type}
                for key, (name, field_type) in account.custom_fields.items()
            ],
            "lists": lists,
        }
        # The account-wide contact dump is left out when one list was asked for.
        if not summary and not only_list:
            state["contacts"] = contacts_by_email(account.contacts.values())
        return state

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/seed``: add accounts, or extend one by giving its id.

        Shape::

            {"accounts": [{"id", "name", "api_key" | "api_keys": [],
                           "lists": [{"list_id", "title"}],
                           "contacts": [{"Email", ..., "custom": {}, "_autopilot_list": ...}]}]}

        Returns ``{"accounts": [{"id", "api_keys", "lists": [{"list_id", "title"}],
        "contact_ids": [...]}]}``.
        """
        result = []
        try:
            with self.lock:
                for spec in body.get("accounts") or []:
                    account_id = str(spec.get("id") or secrets.token_hex(6))
                    account = self.accounts.get(account_id)
                    if account is None:
                        account = self.accounts[account_id] = Account(
                            account_id, spec.get("name") or "Account"
                        )
                    keys = list(spec.get("api_keys") or [])
                    keys += [spec["api_key"]] if spec.get("api_key") else []
                    for key in keys:
                        account.api_keys.add(key)
                        self.api_keys[key] = account.id
                    for list_spec in spec.get("lists") or []:
                        list_id = list_spec.get("list_id") or new_list_id()
                        title = list_spec.get("title") or list_spec.get("name") or "List"
                        account.lists.setdefault(list_id, ContactList(list_id, title))
                    now = _timestamp()
                    contact_ids = []
                    for data in spec.get("contacts") or []:
                        try:
                            self._validate(account, data)
                        except ApiError as error:
                            raise ControlError(f"contact {data}: {error.message}") from error
                        contact_ids.append(self._upsert(account, data, now).contact_id)
                    result.append(
                        {
                            "id": account.id,
                            "api_keys": sorted(account.api_keys),
                            "lists": [
                                {"list_id": lst.list_id, "title": lst.title}
                                for lst in account.lists.values()
                            ],
                            "contact_ids": contact_ids,
                        }
                    )
        except (AttributeError, TypeError, KeyError) as error:
            raise ControlError(f"bad seed: {error!r}") from error
        return {"accounts": result}

    def delete_list(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/delete_list {"list_id": ...}``: the list is gone from its account, its
        contacts stay; calls naming it get ``404 {"error":"Not Found","message":"List could not
        be found."}`` (an upsert naming it in ``_autopilot_list`` writes nothing)."""
        list_id = str(body.get("list_id") or "")
        with self.lock:
            for account in self.accounts.values():
                found = account.lists.pop(list_id, None)
                if found is not None:
                    for contact in account.contacts.values():
                        contact.lists.discard(list_id)
                    return {"deleted": list_id}
        raise ControlError(f"no list {list_id!r}")

    def consent(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/consent``: contacts opt out as they would at Autopilot.

        ``{"emails": [...], "state": "unsubscribed|bounced|complained", "list_id": optional,
        "account_id": optional, "at": optional ISO time (default now; no zone = UTC)}``.
        Each contact gains a ``mail_unsubscribed`` (and ``"unsubscribed": true``),
        ``mail_hardbounced`` or ``mail_complained`` event at ``at``, and ``updated_at`` = ``at``.
        An address Autopilot does not hold becomes a contact of ``account_id`` (default: the
        account of ``list_id``, else the first account), put on ``list_id`` when given; opting
        out holds account-wide whatever the list.
        """
        emails, state, when = consent_request(body, tuple(CONSENT_EVENTS))
        epoch_ms = int(when.timestamp() * 1000)
        stamp = _timestamp(when.astimezone(UTC))
        list_id = str(body.get("list_id") or "")
        with self.lock:
            home = self.accounts.get(str(body.get("account_id") or ""))
            if body.get("account_id") and home is None:
                raise ControlError(f"no account {body['account_id']!r}")
            if list_id:
                owner = next((a for a in self.accounts.values() if list_id in a.lists), None)
                if owner is None:
                    raise ControlError(f"no list {list_id!r}")
                home = home or owner
            home = home or next(iter(self.accounts.values()), None)
            for email in emails:
                found = [
                    (account, contact)
                    for account in self.accounts.values()
                    if (contact := account.find_contact(email)) is not None
                ]
                if not found:
                    if home is None:
                        raise ControlError("there is no account to hold the contact")
                    data: dict[str, Any] = {"Email": email}
                    if list_id in home.lists:
                        data["_autopilot_list"] = list_id
                    found = [(home, self._upsert(home, data, stamp))]
                for _account, contact in found:
                    if state == "unsubscribed":
                        contact.unsubscribed = True
                    contact.mail = contact.mail or {}
                    events = contact.mail.setdefault(CONSENT_EVENTS[state], {})
                    events[delivery_id(epoch_ms)] = epoch_ms
                    contact.updated_at = stamp
        return {"state": state, "emails": len(emails)}

    def revoke(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/revoke``: ``{"api_key": KEY}`` or ``{"all": true}`` → 401 from then on."""
        with self.lock:
            keys = list(self.api_keys) if as_bool(body.get("all")) else [body.get("api_key")]
            revoked = 0
            for key in keys:
                owner = self.api_keys.pop(key, None) if key else None
                if owner is not None:
                    self.accounts[owner].api_keys.discard(key)
                    revoked += 1
        if not revoked:
            raise ControlError("no such api_key; give api_key or all")
        return {"revoked": {"api_keys": revoked}}


def _fits(field_type: str, value: Any) -> bool:
    if field_type == "string":
        return isinstance(value, str)
    if field_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if field_type == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if field_type == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str) and ISO_DATE.match(value) is not None
