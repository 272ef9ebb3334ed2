"""Fake Ortto person and audience API v1, for the three regions at once.

Contract: /work/shared/spec/ortto_api.md. Its "Choices a fake must make" (§8), as decided here
(and in fakes/README.md, "Ortto"):

- One process serves every region: ``/v1`` is the global host, ``/au/v1`` and ``/eu/v1`` the
  Australian and European ones. A key belongs to one region; on another region's path → 401.
- ``POST /v1/person/merge``: 1-100 people (more, or a body over 2 MB → 400); ``people[]`` in
  the order sent with ``person_id`` and ``status`` created / merged / ignored, ids assigned at
  once also with ``async:true``. A bad person: ``{"status":"error","error":{"code",
  "message"}}``. ``merge_strategy`` 1 fills empty fields, 2 overwrites, 3 changes nothing
  (ignored); ``skip_non_existing`` leaves unknown people out (ignored). Only ``str::email`` is
  a supported merge key here (matched lower-cased). With ``suppression_list_field_id`` an
  address on the suppression list is refused with the error code ``suppressed``.
- Unknown custom field ids → 400 naming the field (the whole request, §9). Email check: syntax
  only.
- Custom fields (§9): ``POST /v1/person/custom-field/get`` lists them (``dic_items`` for
  selects); ``POST /v1/person/custom-field/create`` makes one (types text, large_text, integer,
  decimal, currency, price, date, time, bool, phone, single_select, multi_select, link,
  object; ``values`` required for selects only; names of 1-100 characters, unique ignoring
  case; at most 100 fields, then 400). Ids: ``<prefix>:cm:<kebab-case name>`` with text,
  large_text, single_select, link → ``str``; multi_select → ``sst``; integer, decimal,
  currency, price → ``int``; bool → ``bol``; date → ``dtz``; time → ``tme``; phone → ``phn``;
  object → ``obj``.
- A person whose value a field cannot take gets ``{"status":"error","error":{"code":
  "invalid-field","message"}}`` and nothing of them is written: text over 255 characters
  (4000 for large_text; first and last name 255), an ``int`` that is not a JSON integer, a
  ``bol`` that is not true/false, a ``dtz`` that is not ``{"year","month","day"}`` of a real
  date, a ``tme`` that is not ISO 8601 text, a select value (or an ``sst`` list item) not
  among the field's values. ``null`` clears a field (with ``merge_strategy`` 2).
- ``tags`` adds tags to a person and ``unset_tags`` takes them off (matched ignoring case,
  kept in the case first seen); the same tag in both → the person is refused.
- A person created without ``bol::p`` gets ``bol::p`` true (§9).
- Audiences are filters ``{"$and":[{"$bool_is_true":{"field_id":"bol:cm:x"}}]}``: a person is a
  member while that field is true (recomputed on every read).
- ``audiences/get``: a bare array, ``limit`` clamped to 40.
- Rate limit: token bucket per key (``rate_limit`` req/s, default 30 = Business), 429
  ``{"error":{"code":"rate-limit","message":"rate limit","try-in-seconds":N}}``, no headers.
- Other errors: ``{"error":{"code":"bad-request|unauthorized|not-found","message"}}``.
- Archive / delete: at most 100 ids; delete of a person not archived → 400.
- ``POST /v1/person/subscriptions``: 1-100 people by ``email``; ``email_permissions`` is the
  person's ``bol::p`` (true unless set false); unknown or archived → ``person_status``
  ``not-found``.
- Consent read-back (§10): ``person/get`` takes ``$bol::is`` filters (``$and``/``$or`` of
  them), ``limit`` 1-500 (else 50), ``offset`` or ``cursor_id``, and answers ``meta``,
  ``next_offset``, ``cursor_id``, ``has_more``. ``suppression-list/email/get`` answers the
  contract's invented ``{"emails":[{"email"}],"next_offset","has_more"}``. ``POST
  /_fake/consent`` turns ``bol::p`` off (``unsubscribed``) or suppresses the address (the
  other states).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fakes.server import (
    ControlError,
    FakeApp,
    Request,
    Response,
    as_bool,
    json_response,
    match_route,
    option,
)

REGIONS = ("global", "au", "eu")
MAX_PEOPLE = 100
MAX_AUDIENCES = 40
#: ``limit`` of a person or suppression-list read: at most 500, else the default 50 (§10).
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
#: ``POST /_fake/consent`` states: all but "unsubscribed" put the address on the suppression list.
CONSENT_STATES = ("unsubscribed", "bounced", "complained", "cleaned", "suppressed")
MAX_PAYLOAD = 2 * 1024 * 1024
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BUILT_IN = {"str::email", "str::first", "str::last", "str::ei", "bol::p", "phn::phone"}
MAX_FIELDS = 100
MAX_NAME = 100
FIELD_PREFIXES = {
    "text": "str",
    "large_text": "str",
    "single_select": "str",
    "link": "str",
    "multi_select": "sst",
    "integer": "int",
    "decimal": "int",
    "currency": "int",
    "price": "int",
    "bool": "bol",
    "date": "dtz",
    "time": "tme",
    "phone": "phn",
    "object": "obj",
}
SELECTS = ("single_select", "multi_select")
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass
class OrttoSettings:
    api_keys: list[str] = field(
        default_factory=lambda: ["demo-ortto-key"],
        metadata={
            "help": "API key of the demo account (global region); repeat for several.",
            "startup_only": True,
            "flag": "--api-key",
        },
    )
    rate_limit: float = option(30.0, "Requests per second per API key; 0 disables the limit.")


class Person:
    __slots__ = ("archived", "fields", "id", "tags")

    def __init__(self) -> None:
        self.id = secrets.token_hex(12)
        self.fields: dict[str, Any] = {}
        self.archived = False
        self.tags: dict[str, str] = {}  # lower-cased tag → tag as first seen


class Account:
    def __init__(self, account_id: str, region: str) -> None:
        self.id = account_id
        self.region = region
        self.people: dict[str, Person] = {}  # lower-cased email → person
        # id → {"name", "display_type", "values"}
        self.custom_fields: dict[str, dict[str, Any]] = {}
        self.audiences: dict[str, dict[str, Any]] = {}
        self.suppressed: set[str] = set()

    def add_field(self, field_id: str, name: str, display_type: str = "", values=()) -> None:
        prefix = field_id.split(":", 1)[0]
        kind = display_type or next((t for t, p in FIELD_PREFIXES.items() if p == prefix), "text")
        self.custom_fields[field_id] = {"name": name, "display_type": kind, "values": list(values)}

    def members(self, audience: dict[str, Any]) -> list[Person]:
        marker = audience["filter"]["$and"][0]["$bool_is_true"]["field_id"]
        return [p for p in self.people.values() if not p.archived and p.fields.get(marker) is True]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


ROUTES = (
    ("POST", ("audiences", "get"), "get_audiences", "POST /v1/audiences/get"),
    ("PUT", ("audience", "subscribe"), "subscribe", "PUT /v1/audience/subscribe"),
    ("POST", ("person", "merge"), "merge", "POST /v1/person/merge"),
    ("POST", ("person", "get"), "get_people", "POST /v1/person/get"),
    ("POST", ("person", "subscriptions"), "subscriptions", "POST /v1/person/subscriptions"),
    (
        "POST",
        ("suppression-list", "email", "get"),
        "get_suppressed",
        "POST /v1/suppression-list/email/get",
    ),
    ("POST", ("person", "custom-field", "get"), "get_fields", "POST /v1/person/custom-field/get"),
    (
        "POST",
        ("person", "custom-field", "create"),
        "create_field",
        "POST /v1/person/custom-field/create",
    ),
    ("PUT", ("person", "archive"), "archive", "PUT /v1/person/archive"),
    ("DELETE", ("person", "delete"), "delete", "DELETE /v1/person/delete"),
)


class OrttoFake(FakeApp):
    kind = "ortto"
    api_prefix = "/v1"
    settings_class = OrttoSettings
    settings: OrttoSettings

    def _reset_state(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.api_keys: dict[str, str] = {}
        if self.demo:
            self.seed(
                {
                    "accounts": [
                        {
                            "id": "demo",
                            "region": "global",
                            "api_keys": self.settings.api_keys,
                            "custom_fields": [
                                {"id": "bol:cm:newsletter-segment", "name": "Newsletter segment"},
                                {"id": "bol:cm:customers-segment", "name": "Customers segment"},
                            ],
                            "audiences": [
                                {
                                    "id": "a00000000000000000000001",
                                    "name": "Newsletter",
                                    "marker": "bol:cm:newsletter-segment",
                                },
                                {
                                    "id": "a00000000000000000000002",
                                    "name": "Customers",
                                    "marker": "bol:cm:customers-segment",
                                },
                            ],
                        }
                    ]
                }
            )

    @staticmethod
    def error(status: int, code: str, message: str, **extra: Any) -> Response:
        return json_response(status, {"error": {"code": code, "message": message, **extra}})

    def burst_429_response(self) -> Response:
        response = self.error(
            429, "rate-limit", "rate limit", **{"try-in-seconds": self.faults.burst_429_reset}
        )
        response.headers.update(self.burst_headers(int(self.settings.rate_limit) or 30))
        return response

    def server_error_response(self, status: int) -> Response:
        return self.error(status, "internal", "Injected server error")

    def handle_api(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        region = "global"
        if parts and parts[0] in ("au", "eu"):
            region, parts = parts[0], parts[1:]
        if not parts or parts[0] != "v1":
            return self.error(404, "not-found", f"{request.path} does not exist")
        key = request.headers.get("X-Api-Key") or ""
        with self.lock:
            account = self.accounts.get(self.api_keys.get(key, ""))
        if account is None or account.region != region:
            return self.error(401, "unauthorized", "Invalid or missing X-Api-Key")
        if self.settings.rate_limit > 0:
            decision = self.limiter.acquire(key, self.settings.rate_limit)
            if not decision.allowed:
                return self.error(
                    429, "rate-limit", "rate limit", **{"try-in-seconds": decision.reset_seconds}
                )
        match = match_route(ROUTES, request.method, parts[1:])
        if not isinstance(match, tuple):
            return self.error(404, "not-found", f"{request.method} {request.path} does not exist")
        handler, label, _ids = match
        try:
            if len(request.body) > MAX_PAYLOAD:
                raise ApiError(400, "bad-request", "The payload is larger than 2 MB.")
            try:
                body = json.loads(request.body or b"{}")
            except ValueError as error:
                raise ApiError(400, "bad-request", f"Invalid JSON: {error}") from None
            if not isinstance(body, dict):
                raise ApiError(400, "bad-request", "The body must be a JSON object.")
            with self.lock:
                response: Response = getattr(self, handler)(account, body)
        except ApiError as error:
            response = self.error(error.status, error.code, error.message)
        response.endpoint = label
        return response

    # -- API --------------------------------------------------------------------------------

    def get_audiences(self, account: Account, body: dict[str, Any]) -> Response:
        limit = min(MAX_AUDIENCES, max(1, int(body.get("limit") or MAX_AUDIENCES)))
        offset = max(0, int(body.get("offset") or 0))
        term = str(body.get("search_term") or "").lower()
        with_filter = as_bool(body.get("with_filter"))
        audiences = [a for a in account.audiences.values() if term in a["name"].lower()]
        page = [
            {
                "id": a["id"],
                "name": a["name"],
                "instance_id": account.id,
                "type": "permanent",
                "building": False,
                "ready": True,
                "is_public": False,
                "created": "2026-01-01T00:00:00Z",
                **({"filter": a["filter"]} if with_filter else {}),
            }
            for a in audiences[offset : offset + limit]
        ]
        return json_response(200, page)

    def get_fields(self, account: Account, body: dict[str, Any]) -> Response:
        fields = []
        for fid, found in account.custom_fields.items():
            entry: dict[str, Any] = {
                "field": {
                    "id": fid,
                    "name": found["name"],
                    "display_type": found["display_type"],
                    "liquid_name": "people.custom." + fid.split(":")[-1],
                },
                "tracked_value": found["display_type"] != "multi_select",
            }
            if found["display_type"] in SELECTS:
                entry["field"]["dic_items"] = list(found["values"])
            fields.append(entry)
        return json_response(200, {"fields": fields})

    def create_field(self, account: Account, body: dict[str, Any]) -> Response:
        kind = str(body.get("type") or "")
        name = str(body.get("name") or "").strip()
        values = [str(v) for v in body.get("values") or []]
        if kind not in FIELD_PREFIXES:
            raise ApiError(400, "bad-request", f"Unknown custom field type: {kind}")
        if not 1 <= len(name) <= MAX_NAME:
            raise ApiError(400, "bad-request", f"A field name has 1 to {MAX_NAME} characters.")
        if (kind in SELECTS) != bool(values):
            raise ApiError(400, "bad-request", "values are required for selects, and only there.")
        if any(f["name"].lower() == name.lower() for f in account.custom_fields.values()):
            raise ApiError(400, "bad-request", f"A custom field named {name} already exists.")
        if len(account.custom_fields) >= MAX_FIELDS:
            raise ApiError(400, "bad-request", f"At most {MAX_FIELDS} custom fields per instance.")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "field"
        field_id = f"{FIELD_PREFIXES[kind]}:cm:{slug}"
        if field_id in account.custom_fields:
            raise ApiError(400, "bad-request", f"The field id {field_id} already exists.")
        account.add_field(field_id, name, kind, values)
        return json_response(
            200, {"name": name, "field_id": field_id, "display_type": kind, "values": values}
        )

    def merge(self, account: Account, body: dict[str, Any]) -> Response:
        people = body.get("people")
        if not isinstance(people, list) or not 1 <= len(people) <= MAX_PEOPLE:
            raise ApiError(400, "bad-request", f"people must hold 1 to {MAX_PEOPLE} people.")
        if body.get("merge_by") not in (["str::email"], None):
            raise ApiError(400, "bad-request", "This fake merges by str::email only.")
        strategy = int(body.get("merge_strategy") or 2)
        skip_new = as_bool(body.get("skip_non_existing"))
        check_suppressed = body.get("suppression_list_field_id") == "str::email"
        for person in people:
            for field_id in (person or {}).get("fields") or {}:
                if field_id not in BUILT_IN and field_id not in account.custom_fields:
                    raise ApiError(400, "bad-request", f"Unknown field id: {field_id}")
        results = []
        for person in people:
            fields = dict((person or {}).get("fields") or {})
            email = str(fields.get("str::email") or "").strip()
            tags = [str(t) for t in (person or {}).get("tags") or []]
            unset = [str(t) for t in (person or {}).get("unset_tags") or []]
            problem = self._value_problem(account, fields)
            if not problem and {t.lower() for t in tags} & {t.lower() for t in unset}:
                problem = "a tag cannot be both set and unset"
            if problem:
                results.append(
                    {"status": "error", "error": {"code": "invalid-field", "message": problem}}
                )
                continue
            if not EMAIL_PATTERN.match(email):
                results.append(
                    {
                        "status": "error",
                        "error": {"code": "invalid-email", "message": f"invalid email: {email}"},
                    }
                )
                continue
            key = email.lower()
            if check_suppressed and key in account.suppressed:
                results.append(
                    {
                        "status": "error",
                        "error": {
                            "code": "suppressed",
                            "message": f"{email} is on the email suppression list",
                        },
                    }
                )
                continue
            found = account.people.get(key)
            if found is not None and found.archived:
                found = None  # an archived person who comes back is a new person
            if found is None:
                if skip_new:
                    results.append({"status": "ignored"})
                    continue
                found = account.people[key] = Person()
                found.fields.update({k: v for k, v in fields.items() if v is not None})
                found.fields.setdefault("bol::p", True)  # email permission by default (§9)
                _tag(found, tags, unset)
                results.append({"person_id": found.id, "status": "created"})
                continue
            if strategy == 3:
                results.append({"person_id": found.id, "status": "ignored"})
                continue
            for field_id, value in fields.items():
                if strategy == 2 and value is None:
                    found.fields.pop(field_id, None)
                elif strategy == 2 or found.fields.get(field_id) in (None, ""):
                    found.fields[field_id] = value
            _tag(found, tags, unset)
            results.append({"person_id": found.id, "status": "merged"})
        return json_response(200, {"people": results})

    @staticmethod
    def _value_problem(account: Account, fields: dict[str, Any]) -> str:
        """Why a person's values are refused ("" when every field takes its value)."""
        for field_id, value in fields.items():
            if value is None or field_id in ("str::email", "bol::p"):
                continue
            found = account.custom_fields.get(field_id)
            kind = found["display_type"] if found else "text"
            choices = found["values"] if found else []
            prefix = field_id.split(":", 1)[0]
            problem = ""
            if prefix == "str" and not isinstance(value, str):
                problem = "must be text"
            elif prefix == "str":
                limit = 4000 if kind == "large_text" else 255
                if len(value) > limit:
                    problem = f"is longer than {limit} characters"
                elif kind == "single_select" and value not in choices:
                    problem = "is not one of the field's values"
            elif prefix == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                problem = "must be an integer"
            elif prefix == "bol" and not isinstance(value, bool):
                problem = "must be true or false"
            elif prefix == "dtz" and not _is_date_object(value):
                problem = 'must be {"year","month","day"} of a real date'
            elif prefix == "tme" and not (isinstance(value, str) and ISO_TIME.match(value)):
                problem = "must be an ISO 8601 date and time"
            elif prefix == "sst" and (
                not isinstance(value, list) or any(item not in choices for item in value)
            ):
                problem = "must be a list of the field's values"
            if problem:
                return f"The value of {field_id} {problem}."
        return ""

    def get_people(self, account: Account, body: dict[str, Any]) -> Response:
        """People (not archived), or an audience's members: ``limit`` 1-500 (anything else
        falls back to 50), ``offset`` or ``cursor_id`` (which names the next offset), ``fields``,
        and a ``filter`` of ``$bol::is`` conditions (``$and`` / ``$or`` of them); ``bol::p``
        unset reads as true."""
        audience_id = body.get("audience_id")
        if audience_id:
            audience = account.audiences.get(audience_id)
            if audience is None:
                raise ApiError(404, "not-found", "Audience not found")
            people = account.members(audience)
        else:
            people = [p for p in account.people.values() if not p.archived]
        everyone = len(people)
        condition = body.get("filter")
        if condition:
            _matches(Person(), condition)  # a bad filter is refused, whoever there is
            people = [p for p in people if _matches(p, condition)]
        limit = _limit(body.get("limit"))
        offset = max(0, int(body.get("offset") or 0))
        if body.get("cursor_id"):
            offset = _cursor_offset(body["cursor_id"])
        page = people[offset : offset + limit]
        wanted = body.get("fields") or ["str::email"]
        following = offset + len(page)
        return json_response(
            200,
            {
                "contacts": [
                    {"id": p.id, "fields": {f: _field_value(p, f) for f in wanted}} for p in page
                ],
                "meta": {
                    "total_contacts": everyone,
                    "total_organizations": 0,
                    "total_matches": len(people),
                    "total_subscribers": sum(1 for p in people if _field_value(p, "bol::p")),
                },
                "offset": offset,
                "next_offset": following,
                "cursor_id": f"{following:024x}",
                "has_more": following < len(people),
            },
        )

    def get_suppressed(self, account: Account, body: dict[str, Any]) -> Response:
        """The email suppression list, ``limit`` 1-500 (else 50) from ``offset``, sorted by
        address (``sort_order`` ``asc`` or ``desc``). The answer's shape is the contract's
        invented one: ``{"emails":[{"email"}],"next_offset","has_more"}``."""
        limit = _limit(body.get("limit"))
        offset = max(0, int(body.get("offset") or 0))
        order = str(body.get("sort_order") or "asc").lower()
        if order not in ("asc", "desc"):
            raise ApiError(400, "bad-request", "sort_order must be asc or desc.")
        emails = sorted(account.suppressed, reverse=order == "desc")
        page = emails[offset : offset + limit]
        following = offset + len(page)
        return json_response(
            200,
            {
                "emails": [{"email": email} for email in page],
                "next_offset": following,
                "has_more": following < len(emails),
            },
        )

    def subscriptions(self, account: Account, body: dict[str, Any]) -> Response:
        """People's permissions by email: ``email_permissions`` is ``bol::p``, true unless set
        false (a new person's default). Someone Ortto does not hold (never merged, archived
        or deleted) answers ``person_status`` ``not-found`` (a choice: the contract is silent)."""
        people = body.get("people")
        if not isinstance(people, list) or not 1 <= len(people) <= MAX_PEOPLE:
            raise ApiError(400, "bad-request", f"people must hold 1 to {MAX_PEOPLE} people.")
        results = []
        for entry in people:
            email = str((entry or {}).get("email") or "").strip()
            person = account.people.get(email.lower())
            if person is None or person.archived:
                results.append({"person_status": "not-found", "email": email})
                continue
            results.append(
                {
                    "person_status": "merged",
                    "person_id": person.id,
                    "email": email,
                    "subscriptions": [],
                    "email_permissions": person.fields.get("bol::p") is not False,
                    "sms_permissions": False,
                }
            )
        return json_response(200, {"people": results})

    def subscribe(self, account: Account, body: dict[str, Any]) -> Response:
        if body.get("audience_id") not in account.audiences:
            raise ApiError(404, "not-found", "Audience not found")
        return json_response(200, {})

    def _ids(self, body: dict[str, Any]) -> list[str]:
        ids = body.get("inclusion_ids") or []
        if not isinstance(ids, list) or len(ids) > MAX_PEOPLE:
            raise ApiError(400, "bad-request", f"inclusion_ids holds at most {MAX_PEOPLE} ids.")
        return [str(i) for i in ids]

    def archive(self, account: Account, body: dict[str, Any]) -> Response:
        ids = set(self._ids(body))
        for person in account.people.values():
            if person.id in ids:
                person.archived = True
        return json_response(200, {})

    def delete(self, account: Account, body: dict[str, Any]) -> Response:
        ids = set(self._ids(body))
        targets = [(k, p) for k, p in account.people.items() if p.id in ids]
        if any(not p.archived for _k, p in targets):
            raise ApiError(400, "bad-request", "Only archived people can be deleted.")
        for key, _person in targets:
            del account.people[key]
        return json_response(200, {})

    # -- control ----------------------------------------------------------------------------

    def snapshot(self, query: dict[str, str]) -> dict[str, Any]:
        """``GET /_fake/state[?list=AUDIENCE][&summary=1][&email=ADDRESS]``."""
        only = query.get("list") or ""
        summary = as_bool(query.get("summary"))
        email = (query.get("email") or "").lower()
        with self.lock:
            accounts = []
            for account in self.accounts.values():
                audiences = {}
                for audience in account.audiences.values():
                    if only and audience["id"] != only:
                        continue
                    members = account.members(audience)
                    entry: dict[str, Any] = {
                        "id": audience["id"],
                        "name": audience["name"],
                        "filter": audience["filter"],
                        "count": len(members),
                    }
                    if not summary:
                        entry["members"] = sorted(
                            str(p.fields.get("str::email")).lower() for p in members
                        )
                    audiences[audience["id"]] = entry
                state: dict[str, Any] = {
                    "id": account.id,
                    "region": account.region,
                    "audiences": audiences,
                    "counts": {"people": len(account.people)},
                }
                if not summary:
                    state["people"] = {
                        key: {
                            "person_id": p.id,
                            "archived": p.archived,
                            "fields": dict(p.fields),
                            "tags": sorted(p.tags.values()),
                        }
                        for key, p in account.people.items()
                        if not email or key == email
                    }
                accounts.append(state)
            return {
                "kind": self.kind,
                "accounts": accounts,
                "stats": self.stats_snapshot(),
                "config": self.current_config(),
            }

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/seed``: ``{"accounts": [{"id", "region", "api_keys": [],
        "custom_fields": [{"id", "name", "display_type", "values"}],
        "audiences": [{"id", "name", "marker"}],
        "people": [{"str::email", ...}], "suppressed": [email]}]}``."""
        result = []
        try:
            with self.lock:
                for spec in body.get("accounts") or []:
                    account_id = str(spec.get("id") or secrets.token_hex(6))
                    region = spec.get("region") or "global"
                    if region not in REGIONS:
                        raise ControlError(f"region must be one of {', '.join(REGIONS)}")
                    account = self.accounts.setdefault(account_id, Account(account_id, region))
                    for key in spec.get("api_keys") or []:
                        self.api_keys[key] = account.id
                    for custom in spec.get("custom_fields") or []:
                        account.add_field(
                            custom["id"],
                            custom.get("name") or custom["id"],
                            custom.get("display_type") or "",
                            custom.get("values") or (),
                        )
                    for audience in spec.get("audiences") or []:
                        audience_id = audience.get("id") or secrets.token_hex(12)
                        marker = audience["marker"]
                        if marker not in account.custom_fields:
                            account.add_field(marker, marker, "bool")
                        account.audiences[audience_id] = {
                            "id": audience_id,
                            "name": audience.get("name") or "Audience",
                            "filter": {"$and": [{"$bool_is_true": {"field_id": marker}}]},
                        }
                    for fields in spec.get("people") or []:
                        person = Person()
                        person.fields.update(fields)
                        account.people[str(fields["str::email"]).lower()] = person
                    account.suppressed.update(str(e).lower() for e in spec.get("suppressed") or [])
                    result.append({"id": account.id, "audiences": list(account.audiences)})
        except (AttributeError, TypeError, KeyError) as error:
            raise ControlError(f"bad seed: {error!r}") from error
        return {"accounts": result}

    def consent(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/consent {"emails": [...], "state": "unsubscribed|bounced|complained",
        "list_id"?, "at"?}``: ``unsubscribed`` turns the person's email permission (``bol::p``)
        off, creating the person when the account has none (so); ``bounced`` and ``complained``
        (and, for a test written for every fake, ``cleaned`` and ``suppressed``) put the address
        on the email suppression list. Ortto keeps no date and no per-list
        state for either (§10): ``at`` and ``list_id`` are accepted and ignored. Every account
        of the fake is changed (tests seed one). Returns ``{"changed": n}``."""
        emails = body.get("emails")
        state = body.get("state")
        if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
            raise ControlError("emails must be a list of addresses")
        if state not in CONSENT_STATES:
            raise ControlError(f"state must be one of {', '.join(CONSENT_STATES)}")
        changed = 0
        with self.lock:
            for account in self.accounts.values():
                for email in emails:
                    key = email.strip().lower()
                    if state == "unsubscribed":
                        person = account.people.get(key)
                        if person is None or person.archived:
                            person = account.people[key] = Person()
                            person.fields["str::email"] = email.strip()
                        person.fields["bol::p"] = False
                    else:
                        account.suppressed.add(key)
                    changed += 1
        return {"changed": changed}

    def revoke(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/revoke``: ``{"api_key": KEY}`` or ``{"all": true}`` → 401 from then on."""
        with self.lock:
            keys = list(self.api_keys) if as_bool(body.get("all")) else [body.get("api_key")]
            revoked = sum(1 for key in keys if key and self.api_keys.pop(key, None))
        if not revoked:
            raise ControlError("no such api_key; give api_key or all")
        return {"revoked": {"api_keys": revoked}}


def _limit(value: Any) -> int:
    """A read's ``limit``: 1-500, anything else falls back to 50 (§10)."""
    try:
        limit = int(value)
    except (TypeError, ValueError):
        return DEFAULT_LIMIT
    return limit if 1 <= limit <= MAX_LIMIT else DEFAULT_LIMIT


def _cursor_offset(cursor_id: Any) -> int:
    text = str(cursor_id)
    if len(text) not in (12, 24) or not re.fullmatch(r"[0-9a-f]+", text):
        raise ApiError(
            400,
            "bad-request",
            f"{text!r} cannot unmarshal into an ID, the length must be 12 or 24",
        )
    return int(text, 16)


def _field_value(person: Person, field_id: str) -> Any:
    """A person's value; an unset ``bol::p`` is Ortto's default, true (§9)."""
    value = person.fields.get(field_id)
    return True if value is None and field_id == "bol::p" else value


def _matches(person: Person, condition: Any) -> bool:
    """Whether the person matches a ``person/get`` filter: ``$bol::is`` ``{"field_id",
    "value"}``, or ``$and`` / ``$or`` lists of filters; any other operator → 400."""
    if not isinstance(condition, dict) or len(condition) != 1:
        raise ApiError(400, "bad-request", "A filter is one operator with its operand.")
    [(operator, operand)] = condition.items()
    if operator in ("$and", "$or") and isinstance(operand, list):
        results = (_matches(person, item) for item in operand)
        return all(results) if operator == "$and" else any(results)
    if operator == "$bol::is" and isinstance(operand, dict):
        value = operand.get("value")
        if not isinstance(value, bool) or not isinstance(operand.get("field_id"), str):
            raise ApiError(400, "bad-request", "$bol::is takes a field_id and a true/false value.")
        return _field_value(person, operand["field_id"]) is value
    raise ApiError(400, "bad-request", f"Unsupported filter: {operator}")


def _tag(person: Person, tags: list[str], unset: list[str]) -> None:
    for tag in tags:
        person.tags.setdefault(tag.lower(), tag)
    for tag in unset:
        person.tags.pop(tag.lower(), None)


def _is_date_object(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    try:
        date(int(value["year"]), int(value["month"]), int(value["day"]))
    except (KeyError, TypeError, ValueError):
        return False
    return True
