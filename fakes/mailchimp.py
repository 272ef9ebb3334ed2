"""Fake Mailchimp Marketing API 3.0 (audiences, members, tags) and its OAuth 2 sign-in.

Contract: /work/shared/spec/mailchimp_api.md. Where it is uncertain the fake picks one answer
(listed in fakes/README.md, "Mailchimp"):

- The API lives under ``/{dc}/3.0`` (the data centre in the path stands for the host
  ``{dc}.api.mailchimp.com``), OAuth under ``/oauth2``. Auth before routing: HTTP Basic with any
  user and an API key whose ``-dc`` suffix names the data centre of the path, or ``Bearer`` with
  an OAuth token of an account in that data centre; anything else → 401 problem detail.
- 10 requests at once per credential (``max_connections``); the 11th → 429 problem detail, no
  rate headers. ``work_ms`` makes every API call take that long inside that window.
- Batch ``POST /lists/{id}``: at most 500 members (more → 400 Invalid Resource, nothing
  written); synchronous, HTTP 200 with ``new_members`` / ``updated_members`` / ``errors``
  (``ERROR_GENERIC`` for compliance, forgotten and fake addresses; ``ERROR_CONTACT_EXISTS``
  without ``update_existing``); unchanged members count as updated. Its reply honours
  ``fields`` (dotted paths, as every Mailchimp endpoint does).
- Unsubscribed or cleaned members sent as ``subscribed`` → "Member In Compliance State";
  as ``pending`` they become pending. Archived members sent again are restored (updated).
  Permanently deleted ("forgotten") addresses are refused forever and answer 404 on GET.
- Archive (``DELETE``) → 204; pending, cleaned or archived → 405 with ``Allow: GET, PUT``.
- Tags are the audience's static segments (``GET /lists/{id}/segments``, ids from 1 in the
  order first seen); ``POST /lists/{id}/segments/{segment_id}`` adds or removes up to 500
  addresses each (more → 400, nothing written), ignoring addresses not on the audience, and
  answers with an empty ``errors``.
- Fake-looking addresses: syntax errors and the domains in ``fake_domains``.
- Merge fields (§11): ``POST /lists/{id}/merge-fields`` creates one (``name`` and ``type``
  required; ``tag`` optional, else ``MMERGE<n>``; tags ``^[A-Z0-9_]{1,10}$``; radio and
  dropdown need ``options.choices``); at most 30 per audience, then 400 Invalid Resource.
- A member's merge values are refused per record (``ERROR_GENERIC``, ``field`` =
  ``merge_fields.TAG``; nothing of the member written) for: a tag the audience does not have,
  a value over 255 characters, a number that is neither a JSON number nor numeric text, a date
  not in YYYY-MM-DD, a birthday not in MM/DD, a radio/dropdown value not among its choices.
  ``""`` clears any field. Required merge fields missing on a new member → per-record error;
  tags match case-insensitively and keep the case first seen.
- ``POST /batches`` (§6): ``{"operations": [{"method", "path", "operation_id", "params",
  "body"}]}``, ``body`` a JSON string. Each operation runs as the same call would, at once, in
  order; the answer says ``pending``, and the batch reads ``finished`` from the first
  ``GET /batches/{id}`` (``batch_polls`` makes it read ``started`` that many times first).
  Its results are a gzipped tar at ``response_body_url`` (no credentials asked, like the real
  pre-signed address) of JSON files, each an array of ``{"status_code", "operation_id",
  "response"}`` with ``response`` the call's body as a JSON string (1,000 results a file). No
  limit on the operations of one batch (none is documented); an operation on a path outside
  the API's routes answers 404 inside the results; a malformed batch → 400.
- Consent read-back (§12): member reads honour ``status``, ``since_last_changed`` /
  ``before_last_changed`` (offset ignored, read as UTC), ``unsubscribed_since`` (400 Invalid
  Resource without ``status=unsubscribed``), ``sort_field`` / ``sort_dir``, ``count`` (clamped
  at 1,000) / ``offset`` and ``fields``; ``unsubscribe_reason`` only on unsubscribed members.
  ``GET /lists/{id}/abuse-reports`` pages the complaints. ``POST /_fake/consent`` unsubscribes,
  cleans (``bounced`` too) or records a complaint (which also unsubscribes).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import secrets
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any
from urllib.parse import urlencode

from fakes.server import (
    HTML_CONTENT_TYPE,
    BadRequestBody,
    ControlError,
    FakeApp,
    Request,
    Response,
    as_bool,
    json_bytes,
    match_route,
    option,
    reason_phrase,
)

PROBLEM_CONTENT_TYPE = "application/problem+json; charset=utf-8"
ERROR_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
MAX_BATCH = 500
MAX_COUNT = 1000
MAX_MERGE_FIELDS = 30
MAX_TEXT = 255
MERGE_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)
MERGE_TAG = re.compile(r"^[A-Z0-9_]{1,10}$")
NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: The reason Mailchimp gives an unsubscribe made by the account (or its API), and one made by
#: a complaint (the contract does not say: a choice).
ADMIN_UNSUBSCRIBE = "N/A (Unsubscribed by admin)"
ABUSE_UNSUBSCRIBE = "N/A (Abuse report)"
#: ``POST /_fake/consent`` states, and the member status each leaves.
CONSENT_STATUSES = {
    "unsubscribed": "unsubscribed",
    "complained": "unsubscribed",
    "cleaned": "cleaned",
    "bounced": "cleaned",
}
#: ``sort_field`` of a member read, and what it sorts by.
MEMBER_SORTS = {
    "last_changed": "last_changed",
    "timestamp_opt": "signed_up",
    "timestamp_signup": "signed_up",
}
DEFAULT_MERGE_FIELDS = (
    ("FNAME", "First Name", "text"),
    ("LNAME", "Last Name", "text"),
    ("ADDRESS", "Address", "address"),
    ("PHONE", "Phone Number", "phone"),
)


@dataclass
class MailchimpSettings:
    client_id: str = option("demo-mailchimp-client-id", "OAuth client id.", startup_only=True)
    client_secret: str = option(
        "demo-mailchimp-client-secret", "OAuth client secret.", startup_only=True
    )
    api_keys: list[str] = field(
        default_factory=lambda: ["demo0mailchimp0key-us21"],
        metadata={
            "help": "API key of the demo account (ends in -dc); repeat for several.",
            "startup_only": True,
            "flag": "--api-key",
        },
    )
    dc: str = option("us21", "Data centre of the demo account.", startup_only=True)
    max_connections: int = option(10, "Simultaneous requests per credential; 0 = no limit.")
    work_ms: int = option(0, "Time every API call takes while it holds a connection slot (ms).")
    batch_polls: int = option(
        0, "Status reads of a /batches batch that answer 'started' before 'finished'."
    )
    fake_domains: list[str] = field(
        default_factory=lambda: ["test.com", "*.test", "*.invalid"],
        metadata={
            "help": "Domains whose addresses 'look fake or invalid' (*.x = any subdomain).",
            "flag": "--fake-domain",
        },
    )


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


#: A member's own values (not its merge fields or tags), by name, as a member read gives them.
MEMBER_VALUES: dict[str, Callable[[Any, Any], Any]] = {
    "id": lambda audience, member: subscriber_hash(member.email),
    "email_address": lambda audience, member: member.email,
    "unique_email_id": lambda audience, member: member.unique_email_id,
    "contact_id": lambda audience, member: member.unique_email_id,
    "email_type": lambda audience, member: "html",
    "status": lambda audience, member: member.status,
    "list_id": lambda audience, member: audience.id,
    "timestamp_signup": lambda audience, member: member.signed_up,
    "timestamp_opt": lambda audience, member: member.signed_up,
    "last_changed": lambda audience, member: member.last_changed,
    "unsubscribe_reason": lambda audience, member: member.unsubscribe_reason,
}


def only_fields(payload: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """Mailchimp's ``fields`` parameter: only the comma-separated dotted paths named (a
    list's items each cut alike; a path that ends on an object keeps it whole)."""
    if not fields:
        return payload
    tree: dict[str, Any] = {}
    for path in fields.split(","):
        node = tree
        for part in path.strip().split("."):
            node = node.setdefault(part, {})

    def pick(value: Any, node: dict[str, Any]) -> Any:
        if not node:
            return value
        if isinstance(value, list):
            return [pick(item, node) for item in value]
        if isinstance(value, dict):
            return {key: pick(value[key], sub) for key, sub in node.items() if key in value}
        return value

    return pick(payload, tree)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def stable_id(name: str) -> str:
    return hashlib.md5(f"audience:{name}".encode(), usedforsecurity=False).hexdigest()[:10]


class Member:
    __slots__ = (
        "_last_changed",
        "_status",
        "email",
        "merge_fields",
        "signed_up",
        "tags",
        "unique_email_id",
        "unsubscribe_reason",
        "unsubscribed_at",
    )
    #: Counts every change of any member's status or change time: the member reads that
    #: ``Audience.selected`` keeps are made again after one.
    changes = 0

    def __init__(self, email: str, status: str) -> None:
        self.email = email
        self.signed_up = _now()
        self.unsubscribe_reason = ""
        self.unsubscribed_at = ""
        self._status = ""
        self.status = status
        self.merge_fields: dict[str, Any] = {}
        self.tags: dict[str, str] = {}  # lower-cased name → name as first seen
        self.unique_email_id = secrets.token_hex(5)
        self.last_changed = self.signed_up

    @property
    def status(self) -> str:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        if value == "unsubscribed" and self._status != "unsubscribed":
            self.unsubscribed_at = _now()
            self.unsubscribe_reason = ADMIN_UNSUBSCRIBE
        self._status = value
        Member.changes += 1

    @property
    def last_changed(self) -> str:
        return self._last_changed

    @last_changed.setter
    def last_changed(self, value: str) -> None:
        self._last_changed = value
        Member.changes += 1


class Audience:
    def __init__(self, audience_id: str, name: str, merge_fields: list[dict[str, Any]]) -> None:
        self.id = audience_id
        self.name = name
        self.merge_fields = merge_fields
        self.members: dict[str, Member] = {}  # lower-cased email → member
        self.forgotten: set[str] = set()
        self.tag_ids: dict[str, int] = {}
        self.abuse_reports: list[dict[str, Any]] = []
        # Member reads by their filter and order, while no member changes (``selected``).
        self._selections: dict[tuple, list[Member]] = {}
        self._selections_of: tuple[int, int] = (-1, -1)

    def selected(self, key: tuple, select: Callable[[], list[Member]]) -> list[Member]:
        """The members ``select()`` picks, kept under ``key`` until any member changes: paging
        through 100,000 of them filters and sorts them once, not once per page."""
        version = (Member.changes, len(self.members))
        if version != self._selections_of or len(self._selections) > 16:
            self._selections = {}
            self._selections_of = version
        found = self._selections.get(key)
        if found is None:
            found = self._selections[key] = select()
        return found

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((*STATUSES, "archived"), 0)
        for member in self.members.values():
            counts[member.status] += 1
        return counts

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "web_id": int(self.id[:6], 16),
            "name": self.name,
            "stats": {"member_count": self.counts()["subscribed"]},
            "_links": [],
        }

    def member_values(self, member: Member, names: list[str]) -> dict[str, Any]:
        """Only these of a member's own values (``MEMBER_VALUES``); ``unsubscribe_reason``
        only for an unsubscribed member."""
        return {
            name: MEMBER_VALUES[name](self, member)
            for name in names
            if name != "unsubscribe_reason" or member.status == "unsubscribed"
        }

    def member_api(self, member: Member) -> dict[str, Any]:
        values = {str(f["tag"]): "" for f in self.merge_fields}
        values.update(member.merge_fields)
        found = {
            "id": subscriber_hash(member.email),
            "email_address": member.email,
            "unique_email_id": member.unique_email_id,
            "contact_id": member.unique_email_id,
            "email_type": "html",
            "status": member.status,
            "merge_fields": values,
            "tags_count": len(member.tags),
            "tags": [
                {"id": self.tag_ids.setdefault(key, len(self.tag_ids) + 1), "name": name}
                for key, name in member.tags.items()
            ],
            "list_id": self.id,
            "timestamp_signup": member.signed_up,
            "timestamp_opt": member.signed_up,
            "last_changed": member.last_changed,
            "_links": [],
        }
        if member.status == "unsubscribed":
            found["unsubscribe_reason"] = member.unsubscribe_reason
        return found


class Account:
    def __init__(self, account_id: str, name: str, dc: str) -> None:
        self.id = account_id
        self.name = name
        self.dc = dc
        self.user_id = int(
            hashlib.md5(account_id.encode(), usedforsecurity=False).hexdigest()[:7], 16
        )
        self.api_keys: set[str] = set()
        self.tokens: set[str] = set()
        self.audiences: dict[str, Audience] = {}


class Problem(Exception):
    """An API error, answered as a problem-detail document."""

    def __init__(self, status: int, title: str, detail: str, headers: dict | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}


ROUTES = (
    ("GET", ("ping",), "ping", "GET /ping"),
    ("GET", ("lists",), "get_lists", "GET /lists"),
    ("GET", ("lists", "*"), "get_list", "GET /lists/{list_id}"),
    ("POST", ("lists", "*"), "batch_members", "POST /lists/{list_id}"),
    (
        "GET",
        ("lists", "*", "merge-fields"),
        "get_merge_fields",
        "GET /lists/{list_id}/merge-fields",
    ),
    (
        "POST",
        ("lists", "*", "merge-fields"),
        "create_merge_field",
        "POST /lists/{list_id}/merge-fields",
    ),
    ("GET", ("lists", "*", "members"), "get_members", "GET /lists/{list_id}/members"),
    (
        "GET",
        ("lists", "*", "abuse-reports"),
        "get_abuse_reports",
        "GET /lists/{list_id}/abuse-reports",
    ),
    ("GET", ("lists", "*", "segments"), "get_segments", "GET /lists/{list_id}/segments"),
    (
        "POST",
        ("lists", "*", "segments", "*"),
        "segment_members",
        "POST /lists/{list_id}/segments/{segment_id}",
    ),
    ("GET", ("lists", "*", "members", "*"), "get_member", "GET /lists/{list_id}/members/{hash}"),
    ("PUT", ("lists", "*", "members", "*"), "put_member", "PUT /lists/{list_id}/members/{hash}"),
    (
        "DELETE",
        ("lists", "*", "members", "*"),
        "archive_member",
        "DELETE /lists/{list_id}/members/{hash}",
    ),
    (
        "POST",
        ("lists", "*", "members", "*", "actions", "delete-permanent"),
        "delete_permanent",
        "POST /lists/{list_id}/members/{hash}/actions/delete-permanent",
    ),
    (
        "POST",
        ("lists", "*", "members", "*", "tags"),
        "set_tags",
        "POST /lists/{list_id}/members/{hash}/tags",
    ),
    ("POST", ("batches",), "start_batch", "POST /batches"),
    ("GET", ("batches", "*"), "get_batch", "GET /batches/{batch_id}"),
)
BATCH_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BATCH_RESULTS_PER_FILE = 1000
BATCH_RESULTS_PATH = "/batch-results/"


@dataclass
class Batch:
    id: str
    account_id: str
    total: int
    errored: int
    submitted_at: str
    archive: bytes
    polls_left: int
    completed_at: str = ""


class MailchimpFake(FakeApp):
    kind = "mailchimp"
    api_prefix = "/{dc}/3.0"
    settings_class = MailchimpSettings
    settings: MailchimpSettings

    def _reset_state(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.api_keys: dict[str, str] = {}  # key → account id
        self.tokens: dict[str, str] = {}  # OAuth token → account id
        self.codes: dict[str, tuple[str, str, float]] = {}  # code → (account, redirect, expiry)
        self.in_flight: dict[str, int] = {}
        self._in_flight_lock = threading.Lock()
        self.batches: dict[str, Batch] = {}
        if self.demo:
            self.seed(
                {
                    "accounts": [
                        {
                            "id": "demo",
                            "name": "Demo Company",
                            "dc": self.settings.dc,
                            "api_keys": self.settings.api_keys,
                            "audiences": [{"name": "Newsletter"}, {"name": "Customers"}],
                        }
                    ]
                }
            )

    # -- errors -----------------------------------------------------------------------------

    @staticmethod
    def problem(problem: Problem) -> Response:
        request_id = str(uuid.uuid4())
        body = {
            "type": ERROR_TYPE,
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
            "instance": request_id,
        }
        headers = {
            "X-Request-Id": request_id,
            "Link": "<https://us1.api.mailchimp.com/schema/3.0/Definitions/ProblemDetailDocument"
            '.json>; rel="describedBy"',
            **problem.headers,
        }
        return Response(problem.status, json_bytes(body), PROBLEM_CONTENT_TYPE, headers)

    def burst_429_response(self) -> Response:
        limit = self.settings.max_connections or 10
        return self.problem(
            Problem(429, "Too Many Requests", self._too_many(limit), self.burst_headers(limit))
        )

    @staticmethod
    def _too_many(limit: int) -> str:
        return f"You have exceeded the limit of {limit} simultaneous connections."

    def server_error_response(self, status: int) -> Response:
        return self.problem(Problem(status, reason_phrase(status), "An unexpected error occurred."))

    @staticmethod
    def ok(payload: Any, status: int = 200) -> Response:
        return Response(
            status,
            json_bytes(payload),
            "application/json; charset=utf-8",
            {"X-Request-Id": str(uuid.uuid4())},
        )

    @staticmethod
    def no_content() -> Response:
        return Response(
            204, b"", "application/json; charset=utf-8", {"X-Request-Id": str(uuid.uuid4())}
        )

    # -- request entry point ----------------------------------------------------------------

    def handle_api(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path.startswith(BATCH_RESULTS_PATH) and request.method == "GET":
            return self.batch_results(path.removeprefix(BATCH_RESULTS_PATH))
        if path.lower().startswith("/oauth2/"):
            return self.oauth(request, path.lower().removeprefix("/oauth2/"))
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[1] != "3.0":
            return self.problem(
                Problem(404, "Resource Not Found", "The requested resource could not be found.")
            )
        dc, segments = parts[0], parts[2:]
        try:
            account, credential = self.authenticate(request, dc)
        except Problem as problem:
            return self.problem(problem)
        if not self._take_slot(credential):
            limit = self.settings.max_connections
            response = self.problem(Problem(429, "Too Many Requests", self._too_many(limit)))
            response.endpoint = "429 too many connections"
            return response
        try:
            if self.settings.work_ms:
                time.sleep(self.settings.work_ms / 1000)
            return self.route(request, account, segments)
        finally:
            self._release_slot(credential)

    def _take_slot(self, credential: str) -> bool:
        limit = self.settings.max_connections
        with self._in_flight_lock:
            current = self.in_flight.get(credential, 0)
            if limit and current >= limit:
                return False
            self.in_flight[credential] = current + 1
        return True

    def _release_slot(self, credential: str) -> None:
        with self._in_flight_lock:
            self.in_flight[credential] -= 1

    def authenticate(self, request: Request, dc: str) -> tuple[Account, str]:
        header = request.headers.get("Authorization") or ""
        scheme, _space, value = header.partition(" ")
        invalid = Problem(
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        )
        with self.lock:
            if scheme.lower() == "basic":
                import base64

                try:
                    decoded = base64.b64decode(value).decode("utf-8")
                except ValueError:
                    raise invalid from None
                key = decoded.partition(":")[2]
                account = self.accounts.get(self.api_keys.get(key, ""))
                if account is None or key.rsplit("-", 1)[-1] != dc or account.dc != dc:
                    raise invalid
                return account, key
            if scheme.lower() == "bearer":
                account = self.accounts.get(self.tokens.get(value, ""))
                if account is None or account.dc != dc:
                    raise invalid
                return account, value
        raise Problem(
            401,
            "API Key Missing",
            "Your request did not include an API key.",
        )

    def route(self, request: Request, account: Account, segments: list[str]) -> Response:
        match = match_route(ROUTES, request.method, segments)
        if match is None:
            return self.problem(
                Problem(404, "Resource Not Found", "The requested resource could not be found.")
            )
        if match is True:
            return self.problem(
                Problem(
                    405,
                    "Method Not Allowed",
                    "The requested method and resource are not compatible.",
                )
            )
        assert isinstance(match, tuple)
        handler, label, ids = match
        try:
            response: Response = getattr(self, handler)(request, account, *ids)
        except Problem as problem:
            response = self.problem(problem)
        except BadRequestBody as error:
            response = self.problem(
                Problem(
                    400,
                    "JSON Parse Error",
                    f"We encountered an unspecified JSON parsing error: {error}",
                )
            )
        response.endpoint = label
        return response

    @staticmethod
    def _json(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as error:
            raise BadRequestBody(str(error)) from error
        if not isinstance(body, dict):
            raise BadRequestBody("expected a JSON object")
        return body

    def _audience(self, account: Account, list_id: str) -> Audience:
        audience = account.audiences.get(list_id)
        if audience is None:
            raise Problem(404, "Resource Not Found", "The requested resource could not be found.")
        return audience

    @staticmethod
    def _page(request: Request, items: list) -> list:
        count = min(MAX_COUNT, max(0, int(request.query.get("count") or 10)))
        offset = max(0, int(request.query.get("offset") or 0))
        return items[offset : offset + count]

    # -- API --------------------------------------------------------------------------------

    def ping(self, request: Request, account: Account) -> Response:
        return self.ok({"health_status": "Everything's Chimpy!"})

    def get_lists(self, request: Request, account: Account) -> Response:
        with self.lock:
            audiences = [a.api() for a in account.audiences.values()]
        return self.ok(
            {"lists": self._page(request, audiences), "total_items": len(audiences), "_links": []}
        )

    def get_list(self, request: Request, account: Account, list_id: str) -> Response:
        with self.lock:
            return self.ok(self._audience(account, list_id).api())

    def get_merge_fields(self, request: Request, account: Account, list_id: str) -> Response:
        with self.lock:
            audience = self._audience(account, list_id)
            fields = [{**f, "list_id": audience.id} for f in audience.merge_fields]
        return self.ok(
            {
                "merge_fields": self._page(request, fields),
                "list_id": list_id,
                "total_items": len(fields),
            }
        )

    def create_merge_field(self, request: Request, account: Account, list_id: str) -> Response:
        body = self._json(request)
        name = str(body.get("name") or "").strip()
        kind = str(body.get("type") or "")
        choices = [str(c) for c in ((body.get("options") or {}).get("choices") or [])]
        if not name or kind not in MERGE_TYPES:
            raise Problem(
                400,
                "Invalid Resource",
                f"A merge field needs a name and a type, one of {', '.join(MERGE_TYPES)}.",
            )
        if kind in ("radio", "dropdown") and not choices:
            raise Problem(400, "Invalid Resource", "A radio or dropdown field needs choices.")
        with self.lock:
            audience = self._audience(account, list_id)
            if len(audience.merge_fields) >= MAX_MERGE_FIELDS:
                raise Problem(
                    400,
                    "Invalid Resource",
                    f"This audience already has {MAX_MERGE_FIELDS} merge fields, the most it "
                    "can have.",
                )
            number = max((int(f["merge_id"]) for f in audience.merge_fields), default=0) + 1
            tag = str(body.get("tag") or f"MMERGE{number}").upper()
            if not MERGE_TAG.match(tag):
                raise Problem(
                    400,
                    "Invalid Resource",
                    "A merge tag is 1 to 10 upper-case letters, digits or underscores.",
                )
            if any(f["tag"] == tag for f in audience.merge_fields):
                raise Problem(400, "Invalid Resource", f"The merge tag {tag} already exists.")
            options: dict[str, Any] = {"choices": choices} if choices else {}
            if kind == "text":
                options["size"] = 25
            if kind in ("date", "birthday"):
                options["date_format"] = "YYYY-MM-DD" if kind == "date" else "MM/DD"
            created = {
                "merge_id": number,
                "tag": tag,
                "name": name,
                "type": kind,
                "required": bool(body.get("required")),
                "default_value": "",
                "public": bool(body.get("public")),
                "display_order": number + 1,
                "options": options,
                "help_text": "",
            }
            audience.merge_fields.append(created)
        return self.ok({**created, "list_id": list_id})

    def get_members(self, request: Request, account: Account, list_id: str) -> Response:
        """Members by ``status``; changed since or before a time (``since_last_changed``,
        ``before_last_changed``: the offset is ignored and the time read as UTC, as Mailchimp
        does); unsubscribed since a time (``unsubscribed_since``, only with
        ``status=unsubscribed``); sorted by ``sort_field`` / ``sort_dir``; paged by ``count``
        (at most 1,000) and ``offset``; cut to ``fields``."""
        query = request.query
        status = query.get("status") or None
        if status is not None and status not in (*STATUSES, "archived"):
            raise Problem(400, "Invalid Resource", f"The status '{status}' is not a valid status.")
        since = _query_time(query, "since_last_changed")
        before = _query_time(query, "before_last_changed")
        unsubscribed_since = _query_time(query, "unsubscribed_since")
        if "unsubscribed_since" in query and status != "unsubscribed":
            raise Problem(
                400,
                "Invalid Resource",
                "unsubscribed_since can only be used with status=unsubscribed.",
            )
        sort_field = query.get("sort_field") or ""
        sort_dir = (query.get("sort_dir") or "ASC").upper()
        if (sort_field and sort_field not in MEMBER_SORTS) or sort_dir not in ("ASC", "DESC"):
            raise Problem(
                400,
                "Invalid Resource",
                "sort_field must be one of timestamp_opt, timestamp_signup, last_changed and "
                "sort_dir ASC or DESC.",
            )

        def select() -> list[Member]:
            found = [
                m
                for m in audience.members.values()
                if (status is None or m.status == status)
                and (since is None or m.last_changed >= since)
                and (before is None or m.last_changed < before)
                and (unsubscribed_since is None or m.unsubscribed_at >= unsubscribed_since)
            ]
            if sort_field:
                found.sort(key=attrgetter(MEMBER_SORTS[sort_field]), reverse=sort_dir == "DESC")
            return found

        key = (status, since, before, unsubscribed_since, sort_field, sort_dir)
        fields = query.get("fields") or ""
        # When only a member's own values are asked for, only they are made: a read-back of
        # 100,000 members is not spent copying merge fields and tags to throw them away.
        wanted = [path.strip().removeprefix("members.") for path in fields.split(",")]
        own = [name for name in wanted if name in MEMBER_VALUES]
        direct = bool(fields) and all(
            name in MEMBER_VALUES or name in ("total_items", "list_id", "_links") for name in wanted
        )
        with self.lock:
            audience = self._audience(account, list_id)
            members = audience.selected(key, select)
            chosen = self._page(request, members)
            if direct:
                page = [audience.member_values(m, own) for m in chosen]
            else:
                page = [audience.member_api(m) for m in chosen]
        reply = {"members": page, "list_id": list_id, "total_items": len(members), "_links": []}
        if direct:
            return self.ok({k: v for k, v in reply.items() if k == "members" or k in wanted})
        return self.ok(only_fields(reply, fields))

    def get_abuse_reports(self, request: Request, account: Account, list_id: str) -> Response:
        """The audience's abuse reports (complaints), in the order made; ``count`` / ``offset``
        only (Mailchimp has no filter for them)."""
        with self.lock:
            audience = self._audience(account, list_id)
            reports = audience.abuse_reports
            page = [dict(report) for report in self._page(request, reports)]
        reply = {
            "abuse_reports": page,
            "list_id": list_id,
            "total_items": len(reports),
            "_links": [],
        }
        return self.ok(only_fields(reply, request.query.get("fields")))

    def _member(self, audience: Audience, member_ref: str) -> Member:
        key = member_ref.lower()
        member = audience.members.get(key) if "@" in key else None
        if member is None:
            member = next(
                (m for m in audience.members.values() if subscriber_hash(m.email) == key), None
            )
        if member is None:
            raise Problem(404, "Resource Not Found", "The requested resource could not be found.")
        return member

    def get_member(self, request: Request, account: Account, list_id: str, ref: str) -> Response:
        with self.lock:
            audience = self._audience(account, list_id)
            return self.ok(audience.member_api(self._member(audience, ref)))

    def put_member(self, request: Request, account: Account, list_id: str, ref: str) -> Response:
        body = self._json(request)
        with self.lock:
            audience = self._audience(account, list_id)
            data = dict(body)
            if "status" not in data:
                existing = audience.members.get(str(body.get("email_address") or "").lower())
                data["status"] = existing.status if existing else body.get("status_if_new")
            _outcome, member, error = self._write(audience, data, update_existing=True)
            if error is not None:
                raise Problem(400, error[0], error[1])
            return self.ok(audience.member_api(member))

    def batch_members(self, request: Request, account: Account, list_id: str) -> Response:
        body = self._json(request)
        members = body.get("members")
        if not isinstance(members, list):
            raise Problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        if len(members) > MAX_BATCH:
            raise Problem(
                400,
                "Invalid Resource",
                f"Too many members: at most {MAX_BATCH} members may be added or updated per call.",
            )
        update_existing = as_bool(body.get("update_existing"))
        sync_tags = as_bool(body.get("sync_tags")) and update_existing
        skip_duplicates = as_bool(request.query.get("skip_duplicate_check"))
        fields = request.query.get("fields")
        written = self._written_member(fields)
        new, updated, errors = [], [], []
        seen: set[str] = set()
        with self.lock:
            audience = self._audience(account, list_id)
            for data in members:
                email = (
                    str((data or {}).get("email_address") or "") if isinstance(data, dict) else ""
                )
                if email.lower() in seen:
                    if not skip_duplicates:
                        errors.append(
                            self._batch_error(
                                email,
                                "Duplicate",
                                f"{email} appears more than once in this request.",
                            )
                        )
                    continue
                seen.add(email.lower())
                outcome, member, error = self._write(
                    audience, data if isinstance(data, dict) else {}, update_existing, sync_tags
                )
                if error is not None:
                    errors.append(self._batch_error(email, *error))
                elif outcome == "new":
                    new.append(written(audience, member))
                else:
                    updated.append(written(audience, member))
        reply = {
            "new_members": new,
            "updated_members": updated,
            "errors": errors,
            "total_created": len(new),
            "total_updated": len(updated),
            "error_count": len(errors),
            "_links": [],
        }
        return self.ok(only_fields(reply, fields))

    @staticmethod
    def _written_member(fields: str | None) -> Callable[[Audience, Member], dict[str, Any]]:
        """How a batch's reply gives a member written: whole, or, when ``fields`` asks only for
        members' own values (each one's address, say), only them: a batch of 500 is not spent
        copying merge fields and tags to throw them away."""
        paths = [path.strip() for path in (fields or "").split(",")]
        names = [
            path.split(".", 1)[1]
            for path in paths
            if path.startswith(("new_members.", "updated_members."))
        ]
        whole = not fields or any(path in ("new_members", "updated_members") for path in paths)
        if whole or not names or not all(name in MEMBER_VALUES for name in names):
            return Audience.member_api
        own = list(dict.fromkeys(names))
        return lambda audience, member: audience.member_values(member, own)

    @staticmethod
    def _batch_error(email: str, title: str, text: str) -> dict[str, Any]:
        code = "ERROR_CONTACT_EXISTS" if title == "Member Exists" else "ERROR_GENERIC"
        field_name = "email_address" if title != "Invalid Resource" else ""
        if text.startswith("Merge field "):
            field_name = "merge_fields." + text.removeprefix("Merge field ").split(":", 1)[0]
        return {
            "email_address": email,
            "error": text,
            "error_code": code,
            "field": field_name,
            "field_message": text,
        }

    def _looks_fake(self, email: str) -> bool:
        if not EMAIL_PATTERN.match(email):
            return True
        domain = email.rsplit("@", 1)[1].lower()
        for pattern in self.settings.fake_domains:
            pattern = pattern.lower()
            if domain == pattern or (pattern.startswith("*.") and domain.endswith(pattern[1:])):
                return True
        return False

    def _write(
        self,
        audience: Audience,
        data: dict[str, Any],
        update_existing: bool,
        sync_tags: bool = False,
    ) -> tuple[str, Member | None, tuple[str, str] | None]:
        """Create or update one member: ``("new" | "updated", member, None)`` or an error
        ``(title, text)``. Nothing is written for a refused member."""
        email = str(data.get("email_address") or "").strip()
        status = data.get("status")
        if not email or self._looks_fake(email):
            return (
                "",
                None,
                (
                    "Invalid Resource",
                    f"{email} looks fake or invalid, please enter a real email address.",
                ),
            )
        if status not in STATUSES:
            return (
                "",
                None,
                ("Invalid Resource", f"The status '{status}' is not one of {', '.join(STATUSES)}."),
            )
        key = email.lower()
        if key in audience.forgotten:
            return (
                "",
                None,
                (
                    "Forgotten Email Not Subscribed",
                    f"{email} was permanently deleted and cannot be re-imported. The contact must "
                    "re-subscribe to get back on the list.",
                ),
            )
        merge_fields = data.get("merge_fields") or {}
        if not isinstance(merge_fields, dict):
            return "", None, ("Invalid Resource", "merge_fields must be an object.")
        known = {str(f["tag"]): f for f in audience.merge_fields}
        values = dict(merge_fields)
        for tag, value in values.items():
            problem = _merge_value_problem(known.get(tag), value)
            if problem:
                return "", None, ("Invalid Resource", f"Merge field {tag}: {problem}.")
        member = audience.members.get(key)
        if member is None:
            missing = [tag for tag, f in known.items() if f.get("required") and not values.get(tag)]
            if missing:
                return (
                    "",
                    None,
                    (
                        "Invalid Resource",
                        f"Your merge fields were invalid: {', '.join(missing)} must be provided.",
                    ),
                )
            member = audience.members[key] = Member(email, status)
            outcome = "new"
        elif not update_existing:
            return (
                "",
                None,
                (
                    "Member Exists",
                    f"{email} is already a list member. Use PUT to insert or update list members.",
                ),
            )
        else:
            if member.status in ("unsubscribed", "cleaned") and status == "subscribed":
                return (
                    "",
                    None,
                    (
                        "Member In Compliance State",
                        f"{email} is in a compliance state due to unsubscribe, bounce, or "
                        "compliance review and cannot be subscribed.",
                    ),
                )
            member.status = status
            outcome = "updated"
        member.merge_fields.update(values)
        tags = [str(t.get("name") if isinstance(t, dict) else t) for t in data.get("tags") or []]
        if sync_tags:
            member.tags.clear()
        for tag in tags:
            member.tags.setdefault(tag.lower(), tag)
        member.last_changed = _now()
        return outcome, member, None

    def archive_member(
        self, request: Request, account: Account, list_id: str, ref: str
    ) -> Response:
        with self.lock:
            audience = self._audience(account, list_id)
            member = self._member(audience, ref)
            if member.status in ("pending", "cleaned", "archived"):
                raise Problem(
                    405,
                    "Method Not Allowed",
                    "This list member cannot be removed. Can not archive a contact that is "
                    "bounced, pending or archived",
                    {"Allow": "GET, PUT"},
                )
            member.status = "archived"
            member.last_changed = _now()
        return self.no_content()

    def delete_permanent(
        self, request: Request, account: Account, list_id: str, ref: str
    ) -> Response:
        with self.lock:
            audience = self._audience(account, list_id)
            member = self._member(audience, ref)
            del audience.members[member.email.lower()]
            audience.forgotten.add(member.email.lower())
        return self.no_content()

    def _tags(self, audience: Audience) -> dict[str, str]:
        """Every tag of the audience (its static segments), lower-cased name → name, each with
        its id in ``tag_ids``."""
        tags: dict[str, str] = {}
        for member in audience.members.values():
            for key, name in member.tags.items():
                tags.setdefault(key, name)
                audience.tag_ids.setdefault(key, len(audience.tag_ids) + 1)
        return tags

    def get_segments(self, request: Request, account: Account, list_id: str) -> Response:
        """The audience's tags, as the static segments Mailchimp keeps them as (``type``
        static or absent; other types hold nothing here)."""
        wanted = request.query.get("type")
        with self.lock:
            audience = self._audience(account, list_id)
            tags = self._tags(audience) if wanted in (None, "", "static") else {}
            segments = [
                {
                    "id": audience.tag_ids[key],
                    "name": name,
                    "type": "static",
                    "member_count": sum(key in m.tags for m in audience.members.values()),
                    "list_id": audience.id,
                }
                for key, name in tags.items()
            ]
        return self.ok(
            {
                "segments": self._page(request, segments),
                "list_id": list_id,
                "total_items": len(segments),
            }
        )

    def segment_members(
        self, request: Request, account: Account, list_id: str, segment_id: str
    ) -> Response:
        """``members_to_add`` / ``members_to_remove``: at most 500 addresses each (more → 400,
        nothing written); addresses not on the audience are ignored."""
        body = self._json(request)
        adding = body.get("members_to_add") or []
        removing = body.get("members_to_remove") or []
        if not isinstance(adding, list) or not isinstance(removing, list):
            raise Problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        if len(adding) > MAX_BATCH or len(removing) > MAX_BATCH:
            raise Problem(
                400, "Invalid Resource", f"You may add or remove at most {MAX_BATCH} members."
            )
        with self.lock:
            audience = self._audience(account, list_id)
            if str(segment_id) not in {str(i) for i in audience.tag_ids.values()}:
                self._tags(audience)  # ids are given when tags are read; give them now
            key = next((k for k, i in audience.tag_ids.items() if str(i) == str(segment_id)), None)
            if key is None:
                raise Problem(
                    404, "Resource Not Found", "The requested resource could not be found."
                )
            name = self._tags(audience).get(key, key) if adding else key
            added, removed = [], []
            for email in adding:
                member = audience.members.get(str(email).strip().lower())
                if member is not None and key not in member.tags:
                    member.tags[key] = name
                    member.last_changed = _now()
                    added.append(audience.member_api(member))
            for email in removing:
                member = audience.members.get(str(email).strip().lower())
                if member is not None and member.tags.pop(key, None) is not None:
                    member.last_changed = _now()
                    removed.append(audience.member_api(member))
        return self.ok(
            {
                "members_added": added,
                "members_removed": removed,
                "errors": [],
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": 0,
            }
        )

    def set_tags(self, request: Request, account: Account, list_id: str, ref: str) -> Response:
        body = self._json(request)
        tags = body.get("tags")
        if not isinstance(tags, list):
            raise Problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        with self.lock:
            audience = self._audience(account, list_id)
            member = self._member(audience, ref)
            for tag in tags:
                name = str((tag or {}).get("name") or "")
                if (tag or {}).get("status") == "inactive":
                    member.tags.pop(name.lower(), None)
                elif name:
                    member.tags.setdefault(name.lower(), name)
            member.last_changed = _now()
        return self.no_content()

    # -- /batches (§6) ----------------------------------------------------------------------

    def start_batch(self, request: Request, account: Account) -> Response:
        body = self._json(request)
        operations = body.get("operations")
        if not isinstance(operations, list) or not operations:
            raise Problem(
                400,
                "Invalid Resource",
                "The resource submitted could not be validated: operations must be a non-empty "
                "array.",
            )
        for number, operation in enumerate(operations):
            if (
                not isinstance(operation, dict)
                or str(operation.get("method") or "").upper() not in BATCH_METHODS
                or not isinstance(operation.get("path"), str)
                or not isinstance(operation.get("body", ""), str)
                or not isinstance(operation.get("params", {}), dict)
            ):
                raise Problem(
                    400,
                    "Invalid Resource",
                    f"The resource submitted could not be validated: operation {number} needs "
                    "a method, a path, and optionally params (an object) and body (a string).",
                )
        results = [self._batch_operation(request, account, op) for op in operations]
        batch = Batch(
            id=secrets.token_hex(5),
            account_id=account.id,
            total=len(results),
            errored=sum(1 for result in results if result["status_code"] >= 400),
            submitted_at=_now(),
            archive=self._results_archive(results),
            polls_left=self.settings.batch_polls,
        )
        with self.lock:
            self.batches[batch.id] = batch
        return self.ok({**self._batch_api(batch, finished=False), "status": "pending"})

    def _batch_operation(
        self, request: Request, account: Account, operation: dict[str, Any]
    ) -> dict[str, Any]:
        """One operation, run as the same call would be, and its result entry."""
        params = {str(k).lower(): str(v) for k, v in (operation.get("params") or {}).items()}
        body = str(operation.get("body") or "").encode("utf-8")
        target = str(operation["path"])
        call = Request(
            str(operation["method"]).upper(), target, target, params, request.headers, body
        )
        response = self.route(call, account, target.strip("/").split("/"))
        return {
            "status_code": response.status,
            "operation_id": operation.get("operation_id"),
            "response": response.body.decode("utf-8") if response.body else "",
        }

    @staticmethod
    def _results_archive(results: list[dict[str, Any]]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for start in range(0, len(results), BATCH_RESULTS_PER_FILE):
                data = json.dumps(results[start : start + BATCH_RESULTS_PER_FILE]).encode()
                info = tarfile.TarInfo(f"{start // BATCH_RESULTS_PER_FILE}.json")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def _batch_api(self, batch: Batch, *, finished: bool) -> dict[str, Any]:
        return {
            "id": batch.id,
            "status": "finished" if finished else "started",
            "total_operations": batch.total,
            "finished_operations": batch.total if finished else 0,
            "errored_operations": batch.errored if finished else 0,
            "submitted_at": batch.submitted_at,
            "completed_at": batch.completed_at if finished else "",
            "response_body_url": (
                f"{self.public_url or ''}{BATCH_RESULTS_PATH}{batch.id}.tar.gz" if finished else ""
            ),
            "_links": [],
        }

    def get_batch(self, request: Request, account: Account, batch_id: str) -> Response:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None or batch.account_id != account.id:
                raise Problem(
                    404, "Resource Not Found", "The requested resource could not be found."
                )
            finished = batch.polls_left <= 0
            if finished and not batch.completed_at:
                batch.completed_at = _now()
            batch.polls_left -= 1
            return self.ok(self._batch_api(batch, finished=finished))

    def batch_results(self, name: str) -> Response:
        with self.lock:
            batch = self.batches.get(name.removesuffix(".tar.gz"))
            finished = batch is not None and batch.polls_left < 0
        if batch is None or not finished:
            response = Response(404, b"Not Found", "text/plain")
        else:
            response = Response(200, batch.archive, "application/x-gzip")
        response.endpoint = "GET batch results"
        return response

    # -- OAuth ------------------------------------------------------------------------------

    def oauth(self, request: Request, action: str) -> Response:
        if action == "authorize":
            return self.authorize(request)
        if action == "token" and request.method == "POST":
            return self.token(request)
        if action == "metadata" and request.method == "GET":
            return self.metadata(request)
        return Response(404, b"Not found", "text/plain", endpoint="/oauth2")

    def authorize(self, request: Request) -> Response:
        params = request.form() if request.method == "POST" else dict(request.query)
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.settings.client_id or not redirect_uri:
            return self._html_page(400, "Invalid client_id or redirect_uri.")
        state = params.get("state")
        extra = {"state": state} if state is not None else {}
        if request.method == "GET":
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in params.items()
                if k in ("client_id", "redirect_uri", "state", "response_type")
            )
            options = "".join(
                f'<option value="{html.escape(a.id)}">{html.escape(a.name)}</option>'
                for a in self.accounts.values()
            )
            action = html.escape((self.public_url or "") + "/oauth2/authorize")
            return self._html_page(
                200,
                f'<form method="post" action="{action}">{hidden}'
                f'<p><label>Account <select name="account_id">{options}</select></label></p>'
                '<button type="submit" name="decision" value="allow">Allow</button> '
                '<button type="submit" name="decision" value="deny">Deny</button></form>',
            )
        if params.get("decision") != "allow":
            return self._redirect(redirect_uri, {"error": "access_denied", **extra})
        account_id = params.get("account_id") or next(iter(self.accounts), "")
        if account_id not in self.accounts:
            return self._html_page(400, "No such account.")
        code = secrets.token_urlsafe(18)
        with self.lock:
            self.codes[code] = (account_id, redirect_uri, time.time() + 600)
        return self._redirect(redirect_uri, {"code": code, **extra})

    def token(self, request: Request) -> Response:
        form = request.form()

        def refused(error: str, description: str, status: int = 400) -> Response:
            body = {"error": error, "error_description": description}
            return Response(
                status, json_bytes(body), "application/json", endpoint="POST /oauth2/token"
            )

        if (
            form.get("client_id") != self.settings.client_id
            or form.get("client_secret") != self.settings.client_secret
        ):
            return refused("invalid_client", "Invalid client credentials", 401)
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None or grant[2] < time.time() or grant[1] != form.get("redirect_uri"):
                return refused("invalid_grant", "Invalid authorization code")
            token = secrets.token_hex(16)
            self.tokens[token] = grant[0]
            self.accounts[grant[0]].tokens.add(token)
        body = {"access_token": token, "expires_in": 0, "scope": None}
        return Response(200, json_bytes(body), "application/json", endpoint="POST /oauth2/token")

    def metadata(self, request: Request) -> Response:
        scheme, _space, token = (request.headers.get("Authorization") or "").partition(" ")
        with self.lock:
            account = self.accounts.get(self.tokens.get(token, "")) if scheme == "OAuth" else None
        if account is None:
            body = {"error": "invalid_token", "error_description": "Invalid or missing token"}
            return Response(
                401, json_bytes(body), "application/json", endpoint="GET /oauth2/metadata"
            )
        root = self.public_url or ""
        body = {
            "dc": account.dc,
            "role": "owner",
            "accountname": account.name,
            "user_id": account.user_id,
            "login": {
                "email": f"owner@{account.id}.example",
                "avatar": None,
                "login_id": account.user_id,
                "login_name": account.id,
                "login_email": f"owner@{account.id}.example",
            },
            "login_url": f"{root}/oauth2",
            "api_endpoint": f"{root}/{account.dc}",
        }
        return Response(200, json_bytes(body), "application/json", endpoint="GET /oauth2/metadata")

    @staticmethod
    def _html_page(status: int, body: str) -> Response:
        document = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Mailchimp (fake)</title>"
            f"</head><body><h1>Log in to connect to Mailchimp</h1>{body}</body></html>"
        )
        return Response(status, document.encode(), HTML_CONTENT_TYPE, endpoint="/oauth2/authorize")

    @staticmethod
    def _redirect(redirect_uri: str, params: dict[str, str]) -> Response:
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode(params)}"
        return Response(302, b"", HTML_CONTENT_TYPE, {"Location": location}, "/oauth2/authorize")

    # -- control ----------------------------------------------------------------------------

    def snapshot(self, query: dict[str, str]) -> dict[str, Any]:
        """``GET /_fake/state[?list=ID][&summary=1][&email=ADDRESS]``."""
        only_list = query.get("list") or ""
        summary = as_bool(query.get("summary"))
        only_email = (query.get("email") or "").lower()
        with self.lock:
            accounts = []
            for account in self.accounts.values():
                audiences = {}
                for audience in account.audiences.values():
                    if only_list and audience.id != only_list:
                        continue
                    entry: dict[str, Any] = {
                        "id": audience.id,
                        "name": audience.name,
                        "counts": audience.counts(),
                        "merge_fields": [f["tag"] for f in audience.merge_fields],
                        "forgotten": sorted(audience.forgotten),
                    }
                    if not summary:
                        entry["members"] = {
                            key: {
                                "email_address": m.email,
                                "status": m.status,
                                "merge_fields": dict(m.merge_fields),
                                "tags": sorted(m.tags.values()),
                            }
                            for key, m in audience.members.items()
                            if not only_email or key == only_email
                        }
                    audiences[audience.id] = entry
                accounts.append(
                    {
                        "id": account.id,
                        "name": account.name,
                        "dc": account.dc,
                        "api_keys": sorted(account.api_keys),
                        "audiences": audiences,
                    }
                )
            return {
                "kind": self.kind,
                "accounts": accounts,
                "stats": self.stats_snapshot(),
                "config": self.current_config(),
            }

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/seed``: add accounts, or extend one by giving its id. Shape::

            {"accounts": [{"id", "name", "dc", "api_keys": [], "access_tokens": [],
                           "audiences": [{"id", "name", "merge_fields": [{"tag", "name",
                                          "type", "required"}],
                                          "members": [{"email_address", "status",
                                                       "merge_fields", "tags",
                                                       "last_changed",
                                                       "unsubscribe_reason"}],
                                          "forgotten": [email, ...]}]}]}

        Returns ``{"accounts": [{"id", "dc", "audiences": [{"id", "name"}]}]}``.
        """
        result = []
        try:
            with self.lock:
                for spec in body.get("accounts") or []:
                    account_id = str(spec.get("id") or secrets.token_hex(6))
                    account = self.accounts.get(account_id)
                    if account is None:
                        account = self.accounts[account_id] = Account(
                            account_id,
                            spec.get("name") or "Account",
                            spec.get("dc") or self.settings.dc,
                        )
                    for key in spec.get("api_keys") or []:
                        account.api_keys.add(key)
                        self.api_keys[key] = account.id
                    for token in spec.get("access_tokens") or []:
                        account.tokens.add(token)
                        self.tokens[token] = account.id
                    for audience_spec in spec.get("audiences") or []:
                        self._seed_audience(account, audience_spec)
                    result.append(
                        {
                            "id": account.id,
                            "dc": account.dc,
                            "audiences": [
                                {"id": a.id, "name": a.name} for a in account.audiences.values()
                            ],
                        }
                    )
        except (AttributeError, TypeError, KeyError) as error:
            raise ControlError(f"bad seed: {error!r}") from error
        return {"accounts": result}

    def _seed_audience(self, account: Account, spec: dict[str, Any]) -> None:
        name = spec.get("name") or "Audience"
        audience_id = spec.get("id") or stable_id(f"{account.id}/{name}")
        audience = account.audiences.get(audience_id)
        if audience is None:
            fields = spec.get("merge_fields")
            if fields is None:
                fields = [{"tag": t, "name": n, "type": k} for t, n, k in DEFAULT_MERGE_FIELDS]
            merge_fields = [
                {
                    "merge_id": number,
                    "tag": str(f["tag"]).upper(),
                    "name": f.get("name") or f["tag"],
                    "type": f.get("type") or "text",
                    "required": bool(f.get("required")),
                    "default_value": "",
                    "public": True,
                    "display_order": number + 1,
                    "options": {"choices": list(f["choices"])}
                    if f.get("choices")
                    else {"size": 25},
                    "help_text": "",
                }
                for number, f in enumerate(fields, start=1)
            ]
            audience = account.audiences[audience_id] = Audience(audience_id, name, merge_fields)
        for member in spec.get("members") or []:
            email = str(member["email_address"])
            entry = audience.members[email.lower()] = Member(
                email, member.get("status") or "subscribed"
            )
            entry.merge_fields.update(member.get("merge_fields") or {})
            if member.get("unsubscribe_reason"):
                entry.unsubscribe_reason = str(member["unsubscribe_reason"])
            if member.get("last_changed"):
                entry.last_changed = _stored_time(str(member["last_changed"]))
            for tag in member.get("tags") or []:
                entry.tags.setdefault(str(tag).lower(), str(tag))
        audience.forgotten.update(str(e).lower() for e in spec.get("forgotten") or [])

    def consent(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/consent {"emails": [...], "state": "unsubscribed|bounced|complained|
        cleaned", "list_id"?, "at"?, "reason"?}``: the people opt out as they would at
        Mailchimp, ``at`` (ISO 8601, default now) being when.

        ``unsubscribed`` and ``cleaned`` set the member's status and ``last_changed``
        (``reason`` is the ``unsubscribe_reason``, "N/A (Unsubscribed by admin)" unless
        given); ``bounced`` is ``cleaned``; ``complained`` adds an abuse report dated ``at``
        and unsubscribes the member. With ``list_id`` the audience's members (an address not
        on it joins it so, unless it was permanently deleted); without it, every audience
        holding the address. Returns ``{"changed": n, "unknown": [addresses]}``."""
        emails = body.get("emails")
        state = body.get("state")
        if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
            raise ControlError("emails must be a list of addresses")
        if state not in CONSENT_STATUSES:
            raise ControlError(f"state must be one of {', '.join(CONSENT_STATUSES)}")
        try:
            at = _stored_time(str(body["at"])) if body.get("at") else _now()
        except ValueError as error:
            raise ControlError(f"at must be an ISO 8601 time: {error}") from error
        list_id = str(body.get("list_id") or "")
        reason = str(body.get("reason") or "")
        changed, unknown = 0, []
        with self.lock:
            audiences = [
                audience
                for account in self.accounts.values()
                for audience in account.audiences.values()
                if not list_id or audience.id == list_id
            ]
            if list_id and not audiences:
                raise ControlError(f"no audience {list_id}")
            for email in emails:
                key = email.strip().lower()
                held = [
                    a for a in audiences if key in a.members or (list_id and key not in a.forgotten)
                ]
                if not held:
                    unknown.append(email)
                for audience in held:
                    member = audience.members.get(key)
                    if member is None:
                        member = audience.members[key] = Member(email.strip(), "subscribed")
                    self._opt_out(audience, member, state, at, reason)
                    changed += 1
        return {"changed": changed, "unknown": unknown}

    @staticmethod
    def _opt_out(audience: Audience, member: Member, state: str, at: str, reason: str) -> None:
        if state == "complained":
            audience.abuse_reports.append(
                {
                    "id": len(audience.abuse_reports) + 1,
                    "campaign_id": hashlib.md5(
                        audience.id.encode(), usedforsecurity=False
                    ).hexdigest()[:10],
                    "list_id": audience.id,
                    "email_id": subscriber_hash(member.email),
                    "email_address": member.email,
                    "merge_fields": dict(member.merge_fields),
                    "vip": False,
                    "date": at,
                    "_links": [],
                }
            )
            reason = reason or ABUSE_UNSUBSCRIBE
        member.status = CONSENT_STATUSES[state]
        if member.status == "unsubscribed":
            member.unsubscribe_reason = reason or ADMIN_UNSUBSCRIBE
            member.unsubscribed_at = at
        member.last_changed = at

    def revoke(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_fake/revoke``: ``{"api_key"}``, ``{"access_token"}`` or ``{"all": true}``."""
        revoked = 0
        with self.lock:
            everything = as_bool(body.get("all"))
            for registry, name in ((self.api_keys, "api_key"), (self.tokens, "access_token")):
                keys = list(registry) if everything else [body.get(name)]
                for key in keys:
                    owner = registry.pop(key, None) if key else None
                    if owner is not None:
                        self.accounts[owner].api_keys.discard(key)
                        self.accounts[owner].tokens.discard(key)
                        revoked += 1
        if not revoked:
            raise ControlError("nothing revoked; give api_key, access_token or all")
        return {"revoked": revoked}


def _merge_value_problem(merge_field: dict[str, Any] | None, value: Any) -> str:
    """Why a merge field refuses the value ("" when it takes it)."""
    if merge_field is None:
        return "this audience has no such merge field"
    if value == "" or value is None:
        return ""  # clears the field
    kind = merge_field.get("type")
    text = str(value)
    if isinstance(value, (dict, list)) and kind != "address":
        return "the value must be text"
    if len(text) > MAX_TEXT:
        return f"the value is longer than {MAX_TEXT} characters"
    if kind == "number" and (isinstance(value, bool) or not NUMERIC.match(text)):
        return "the value is not a number"
    if kind == "date" and not _is_date(text, "%Y-%m-%d", 10):
        return "the date must be written YYYY-MM-DD"
    if kind == "birthday" and not _is_date(f"2000/{text}", "%Y/%m/%d", 10):
        return "the birthday must be written MM/DD"
    choices = (merge_field.get("options") or {}).get("choices") or []
    if kind in ("radio", "dropdown") and text not in choices:
        return "the value is not one of the field's choices"
    return ""


def _stored_time(text: str) -> str:
    """An ISO 8601 time as members keep it: in UTC, written ``YYYY-MM-DDTHH:MM:SS+00:00``
    (a time without an offset is UTC); raises ValueError for anything else."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _query_time(query: dict[str, str], name: str) -> str | None:
    """A time parameter of a member read, as members keep times, or None when absent. Its
    offset is ignored: Mailchimp reads the wall-clock time as UTC (§12). A "+" that arrived
    unescaped (a space) is read as one."""
    text = (query.get(name) or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise Problem(
            400, "Invalid Resource", f"{name} must be a date and time in ISO 8601."
        ) from None
    return moment.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _is_date(text: str, form: str, length: int) -> bool:
    if len(text) != length:
        return False
    try:
        datetime.strptime(text, form)
    except ValueError:
        return False
    return True
