"""A thin client for the Mailchimp Marketing API 3.0 (audience member sync).

Contract: ``shared/spec/mailchimp_api.md``. API calls go through ``_send_api``, which takes one of
the account's connection slots (10 at once, shared by every worker: ``slots``) and adds the
credentials: HTTP Basic with an API key, or ``Bearer`` with an OAuth token. Every error response
becomes a typed error in ``_error_for``. The data centre comes from the API key's suffix or,
for OAuth, from the metadata call at sign-in, and picks the base URL
(``MAILCHIMP_API_URL`` with ``{dc}``).
"""

from __future__ import annotations

import hashlib
import io
import json as jsonlib
import re
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from django.conf import settings

from config.translation import LaterText
from config.translation import gettext_later as _
from connections.types.base import (
    AuthRevoked,
    BackendError,
    CredentialStore,
    Permanent,
    Transient,
)
from connections.types.http import DEFAULT_TIMEOUT, ServiceClient, json_or_none
from connections.types.mailchimp.slots import ConnectionSlots

SERVICE = "Mailchimp"
MAX_BATCH = 500
PAGE_SIZE = 1000
#: Operations in one ``/batches`` call: Mailchimp documents no limit (mailchimp_api.md §6) and
#: third-party tools hold to 500; so do we, which keeps each result archive small.
MAX_BATCH_OPERATIONS = 500
#: The result archive of one batch, at most: compressed, and read out.
MAX_RESULTS_BYTES = 20 * 1024 * 1024
MAX_RESULTS_READ_BYTES = 200 * 1024 * 1024


def subscriber_hash(email: str) -> str:
    """The member id Mailchimp uses in paths: md5 of the trimmed, lower-cased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


# A data centre is a name like us21 that becomes the API's host name, {dc}.api.mailchimp.com:
# anything else (a host, a port, a path) would send the credentials somewhere else.
DATA_CENTRE = re.compile(r"[a-z]{2,4}[0-9]{1,3}")


def is_data_centre(value: object) -> bool:
    return isinstance(value, str) and DATA_CENTRE.fullmatch(value) is not None


def data_centre_of(api_key: str) -> str:
    """``0123abcd-us21`` → ``us21``; "" when the key has no data-centre suffix."""
    parts = api_key.strip().split("-")
    return parts[1] if len(parts) == 2 and parts[0] and is_data_centre(parts[1]) else ""


#: What a batch's reply must hold: who was written, and the errors. Every member written comes
#: back whole otherwise, 500 of them per call, which the fake took two fifths of its CPU
#: to encode and the worker as long to decode for one field of each.
BATCH_REPLY_FIELDS = (
    "new_members.email_address,updated_members.email_address,errors,"
    "total_created,total_updated,error_count"
)


#: What a consent read asks of each member (``unsubscribe_reason`` is optional, §12).
CONSENT_MEMBER_FIELDS = (
    "members.email_address,members.status,members.last_changed,members.unsubscribe_reason,"
    "total_items"
)


class NotFound(Permanent):
    """A 404: an unknown audience, or an address that is not (or no longer) on it."""


class NotRemovable(Permanent):
    """A 405 on archive: the member is pending, cleaned or already archived."""


@dataclass(frozen=True)
class OperationResult:
    """What one operation of a ``/batches`` batch answered: its status code and its body (the
    JSON it held, or None)."""

    status_code: int
    body: Any = None

    @property
    def detail(self) -> str:
        body = self.body if isinstance(self.body, Mapping) else {}
        return str(body.get("detail") or body.get("title") or f"HTTP {self.status_code}")

    @property
    def title(self) -> str:
        body = self.body if isinstance(self.body, Mapping) else {}
        return str(body.get("title") or "")


class MailchimpClient(ServiceClient):
    """One client per connection (or per setup, with a ``MemoryCredentialStore``). Mailchimp
    sends no rate headers: an unhinted 429 waits the default second, then backs off."""

    service = SERVICE
    destination = "mailchimp"

    def __init__(
        self,
        store: CredentialStore | None = None,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ):
        super().__init__(
            store, base_url=settings.MAILCHIMP_API_URL, session=session, timeout=timeout
        )
        self.oauth_url = settings.MAILCHIMP_OAUTH_URL.rstrip("/")
        self.client_id = settings.MAILCHIMP_CLIENT_ID
        self.client_secret = settings.MAILCHIMP_CLIENT_SECRET
        self._slots: ConnectionSlots | None = None
        #: How long a batch may take before the call gives up (a later attempt starts again),
        #: and the first and longest waits between two reads of its status.
        self.batch_wait_seconds = 900.0
        self.batch_poll_seconds = (0.2, 10.0)

    # OAuth -------------------------------------------------------------------------------------

    def authorize_url(self, *, redirect_uri: str, state: str) -> str:
        if not self.client_id or not self.client_secret:
            raise Permanent(
                _(
                    "Mailchimp sign-in is not set up on this server: set MAILCHIMP_CLIENT_ID and "
                    "MAILCHIMP_CLIENT_SECRET, or connect with an API key instead."
                )
            )
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{self.oauth_url}/authorize?{urlencode(query)}"

    def exchange_code(self, *, code: str, redirect_uri: str) -> dict[str, Any]:
        """Trade the callback's code for a token (it never expires), then ask the metadata call
        for the account's data centre. Returns the credentials to store."""
        form = {
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": redirect_uri,
            "code": code,
        }
        response = self._post_form(f"{self.oauth_url}/token", form)
        body = json_or_none(response)
        token = body.get("access_token") if isinstance(body, Mapping) else None
        if response.status_code >= 400 or not token:
            raise self._sign_in_refused(response, body)
        metadata = self._send(
            "GET", f"{self.oauth_url}/metadata", headers={"Authorization": f"OAuth {token}"}
        )
        details = json_or_none(metadata)
        if metadata.status_code >= 400 or not isinstance(details, Mapping):
            raise self._sign_in_refused(metadata, details)
        dc = details.get("dc")
        if not is_data_centre(dc):
            raise Permanent(
                _(
                    "Mailchimp's sign-in did not name a data centre like us21, so the connection "
                    "was refused and no request went to the address it named. Select "
                    "Authenticate with Mailchimp to try again."
                )
            )
        return {
            "access_token": token,
            "dc": dc,
            "account_name": str(details.get("accountname") or ""),
        }

    def _sign_in_refused(self, response: requests.Response, body: Any) -> BackendError:
        common = self._common_error(response, message=f"HTTP {response.status_code}")
        if common is not None:
            return common
        detail = ""
        if isinstance(body, Mapping):
            detail = str(body.get("error_description") or body.get("error") or "")
        return Permanent(
            _(
                "Mailchimp did not accept the sign-in (%(detail)s). Select Authenticate with "
                "Mailchimp to try again."
            )
            % {"detail": detail or f"HTTP {response.status_code}"},
            status=response.status_code,
        )

    # Audiences ---------------------------------------------------------------------------------

    def ping(self) -> None:
        self._api("GET", "ping")

    def audiences(self) -> list[dict[str, Any]]:
        """Every audience of the account, page by page."""
        return list(
            self._pages(
                "lists",
                "lists",
                {"fields": "lists.id,lists.name,lists.stats.member_count,total_items"},
            )
        )

    def audience(self, list_id: str) -> dict[str, Any]:
        return self._api("GET", f"lists/{quote(list_id, safe='')}") or {}

    def merge_fields(self, list_id: str) -> list[dict[str, Any]]:
        return list(self._pages(f"lists/{quote(list_id, safe='')}/merge-fields", "merge_fields"))

    def create_merge_field(
        self, list_id: str, name: str, field_type: str, choices: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Create a merge field (Mailchimp gives it its tag); returns the merge field."""
        body: dict[str, Any] = {"name": name, "type": field_type, "required": False}
        if choices:
            body["options"] = {"choices": list(choices)}
        return self._api("POST", f"lists/{quote(list_id, safe='')}/merge-fields", json=body) or {}

    # Members -----------------------------------------------------------------------------------

    def batch_upsert(
        self,
        list_id: str,
        members: Sequence[Mapping[str, Any]],
        *,
        update_existing: bool = True,
    ) -> dict[str, Any]:
        """Add or update up to 500 members in one synchronous call (``update_existing``; without
        it, members already in the audience come back as ``ERROR_CONTACT_EXISTS`` errors).

        HTTP 200 even when some members fail: the reply's ``errors`` name them."""
        if len(members) > MAX_BATCH:
            raise ValueError(f"Mailchimp takes at most {MAX_BATCH} members per call.")
        body = {"members": list(members), "update_existing": update_existing, "sync_tags": False}
        return (
            self._api(
                "POST",
                f"lists/{quote(list_id, safe='')}",
                json=body,
                params={
                    "skip_merge_validation": "false",
                    "skip_duplicate_check": "false",
                    "fields": BATCH_REPLY_FIELDS,
                },
            )
            or {}
        )

    def member_status(self, list_id: str, email: str) -> str:
        """The member's status (``subscribed``, ``unsubscribed``, ``cleaned``, ``pending``,
        ``transactional`` or ``archived``); ``NotFound`` when the address is not on the list
        (never was, or was permanently deleted)."""
        path = f"lists/{quote(list_id, safe='')}/members/{subscriber_hash(email)}"
        member = self._api("GET", path, params={"fields": "email_address,status"}) or {}
        return str(member.get("status") or "")

    def archive(self, list_id: str, email: str) -> None:
        """Archive a member (never the permanent delete, which blocks the address forever)."""
        self._api("DELETE", f"lists/{quote(list_id, safe='')}/members/{subscriber_hash(email)}")

    def delete_permanent(self, list_id: str, email: str) -> None:
        """Erase a member's data for an erasure request: the address can never be added to
        this audience again (so never for people who only left a segment)."""
        path = f"lists/{quote(list_id, safe='')}/members/{subscriber_hash(email)}"
        self._api("POST", f"{path}/actions/delete-permanent")

    def tag_segment_id(self, list_id: str, tag: str) -> int | None:
        """The id of the static segment that holds a tag's members (Mailchimp keeps each tag
        as one), matched case-insensitively; None when the audience has no such tag."""
        wanted = tag.strip().lower()
        for segment in self._static_segment_pages(list_id):
            if str(segment.get("name") or "").strip().lower() == wanted:
                return int(segment["id"])
        return None

    def static_segments(self, list_id: str) -> dict[str, int]:
        """Every tag of the audience (lower-cased) with the id of its static segment."""
        found: dict[str, int] = {}
        for segment in self._static_segment_pages(list_id):
            found.setdefault(str(segment.get("name") or "").strip().lower(), int(segment["id"]))
        return found

    def _static_segment_pages(self, list_id: str) -> Iterator[dict[str, Any]]:
        return self._pages(
            f"lists/{quote(list_id, safe='')}/segments",
            "segments",
            {"type": "static", "fields": "segments.id,segments.name,total_items"},
        )

    def segment_remove(
        self, list_id: str, segment_id: int, emails: Sequence[str]
    ) -> dict[str, Any]:
        """Take up to 500 addresses out of a static segment (a tag) in one call; addresses not
        on the audience are ignored (mailchimp_api.md §5)."""
        if len(emails) > MAX_BATCH:
            raise ValueError(f"Mailchimp takes at most {MAX_BATCH} addresses per call.")
        path = f"lists/{quote(list_id, safe='')}/segments/{segment_id}"
        return self._api("POST", path, json={"members_to_remove": list(emails)}) or {}

    # /batches (mailchimp_api.md §6) -------------------------------------------------------------

    def member_statuses(self, list_id: str, emails: Sequence[str]) -> dict[str, OperationResult]:
        """Read the members' statuses in one batch: each address's ``GET`` of its member
        (``body["status"]``; a 404 when it is not on the list)."""
        path = f"/lists/{quote(list_id, safe='')}/members"
        return self._by_address(
            emails,
            [
                {
                    "method": "GET",
                    "path": f"{path}/{subscriber_hash(email)}",
                    "params": {"fields": "email_address,status"},
                }
                for email in emails
            ],
        )

    def archive_many(self, list_id: str, emails: Sequence[str]) -> dict[str, OperationResult]:
        """Archive members in one batch (never the permanent delete): each address's
        ``DELETE`` answers 204, or 405 when it is pending, cleaned or archived already."""
        path = f"/lists/{quote(list_id, safe='')}/members"
        return self._by_address(
            emails,
            [{"method": "DELETE", "path": f"{path}/{subscriber_hash(email)}"} for email in emails],
        )

    def _by_address(
        self, emails: Sequence[str], operations: list[dict[str, Any]]
    ) -> dict[str, OperationResult]:
        if len(operations) > MAX_BATCH_OPERATIONS:
            raise ValueError(f"At most {MAX_BATCH_OPERATIONS} operations per batch.")
        for number, operation in enumerate(operations):
            operation["operation_id"] = str(number)
        results = self.run_batch(operations)
        return {
            email: results[str(number)]
            for number, email in enumerate(emails)
            if str(number) in results
        }

    def run_batch(self, operations: list[dict[str, Any]]) -> dict[str, OperationResult]:
        """Start a batch, wait until Mailchimp finished it and read its results: each
        operation's result by its ``operation_id``. A batch that takes longer than
        ``batch_wait_seconds`` raises ``Transient`` (its operations may still run: only
        idempotent ones are sent this way)."""
        batch = self._api("POST", "batches", json={"operations": operations}) or {}
        batch_id = str(batch.get("id") or "")
        if not batch_id:
            raise Transient(_("Mailchimp did not say which batch it started."))
        deadline = time.monotonic() + self.batch_wait_seconds
        wait, longest = self.batch_poll_seconds
        while batch.get("status") != "finished":
            if time.monotonic() + wait > deadline:
                raise Transient(
                    _(
                        "Mailchimp had not finished batch %(batch)s after %(seconds)d seconds; "
                        "it is tried again later."
                    )
                    % {"batch": batch_id, "seconds": self.batch_wait_seconds}
                )
            time.sleep(wait)
            wait = min(wait * 2, longest)
            batch = self._api("GET", f"batches/{quote(batch_id, safe='')}") or {}
        return self._batch_results(str(batch.get("response_body_url") or ""))

    def _batch_results(self, url: str) -> dict[str, OperationResult]:
        """Download a finished batch's results (a gzipped tar of JSON arrays) from the address
        Mailchimp gave, without our credentials (it is a pre-signed storage address), and only
        over HTTPS unless the API itself is plain HTTP (a local fake)."""
        scheme = urlsplit(url).scheme.lower()
        plain_allowed = settings.MAILCHIMP_API_URL.lower().startswith("http:")
        if scheme != "https" and not (scheme == "http" and plain_allowed):
            raise Transient(_("Mailchimp's batch results are not at an https:// address."))
        response = self._send("GET", url, headers={"Accept": "application/x-gzip"}, stream=True)
        try:
            if response.status_code >= 400:
                raise Transient(
                    _("Mailchimp's batch results could not be read (HTTP %(status)s).")
                    % {"status": response.status_code}
                )
            archive = response.raw.read(MAX_RESULTS_BYTES + 1, decode_content=True)
        finally:
            response.close()
        if len(archive) > MAX_RESULTS_BYTES:
            raise Permanent(_("Mailchimp's batch results are larger than expected."))
        return _read_results(archive)

    def members_with_status(self, list_id: str, status: str) -> Iterator[str]:
        """The addresses of the audience's members with this status, page by page."""
        for member in self._pages(
            f"lists/{quote(list_id, safe='')}/members",
            "members",
            {"status": status, "fields": "members.email_address,total_items"},
        ):
            yield str(member.get("email_address") or "")

    # Consent read-back (mailchimp_api.md §12) --------------------------------------------------

    def opted_out_page(
        self, list_id: str, status: str, *, since: str | None, offset: int
    ) -> tuple[list[Mapping[str, Any]], int]:
        """One page (up to 1,000) of the audience's members with this status (``unsubscribed``
        or ``cleaned``) changed since ``since`` (ISO 8601 with ``+00:00``; None: all), oldest
        change first, and the total the filter matches."""
        params: dict[str, Any] = {"status": status}
        if since is not None:
            params["since_last_changed"] = since
        params.update(
            {
                "sort_field": "last_changed",
                "sort_dir": "ASC",
                "count": PAGE_SIZE,
                "offset": offset,
                "fields": CONSENT_MEMBER_FIELDS,
            }
        )
        body = self._api("GET", f"lists/{quote(list_id, safe='')}/members", params=params) or {}
        return _items(body, "members"), _total(body)

    def abuse_reports_page(
        self, list_id: str, *, offset: int
    ) -> tuple[list[Mapping[str, Any]], int]:
        """One page (up to 1,000) of the audience's abuse reports (complaints; Mailchimp has no
        "since" filter for them), and their total."""
        body = (
            self._api(
                "GET",
                f"lists/{quote(list_id, safe='')}/abuse-reports",
                params={"count": PAGE_SIZE, "offset": offset},
            )
            or {}
        )
        return _items(body, "abuse_reports"), _total(body)

    # The one way out, and the one place errors are made ----------------------------------------

    def _pages(
        self, path: str, key: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            body = self._api(
                "GET", path, params={**(params or {}), "count": PAGE_SIZE, "offset": offset}
            )
            items = (body or {}).get(key) or []
            yield from items
            offset += len(items)
            total = int((body or {}).get("total_items") or 0)
            if not items or offset >= total:
                return

    def base_url(self) -> str:
        credentials = self.store.load()
        dc = credentials.get("dc")
        if dc is not None and not is_data_centre(dc):
            raise AuthRevoked(
                _(
                    "This connection's Mailchimp data centre is not a name like us21, so nothing "
                    "was sent. Select Authenticate with Mailchimp to sign in again."
                )
            )
        dc = dc or data_centre_of(str(credentials.get("api_key") or ""))
        if not dc:
            raise AuthRevoked(
                _(
                    "This connection has no Mailchimp data centre: its API key must end in one, "
                    "like -us21. Edit the connection and enter the whole key."
                )
            )
        return settings.MAILCHIMP_API_URL.format(dc=dc).rstrip("/")

    def _authorization(self) -> tuple[str, str]:
        """The Authorization header and the account key the connection slots are counted by."""
        credentials = self.store.load()
        token = credentials.get("access_token")
        if token:
            header = f"Bearer {token}"
            secret = str(token)
        else:
            key = str(credentials.get("api_key") or "")
            secret = key
            header = "Basic " + _basic("relay", key)
        account = hashlib.sha256(secret.encode("utf-8")).hexdigest()[:32]
        return header, account

    def _send_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An API call, holding one of the account's connection slots."""
        header, account = self._authorization()
        if self._slots is None or not self._slots.key.endswith(account):
            self._slots = ConnectionSlots(
                f"mailchimp:{account}", settings.MAILCHIMP_MAX_CONNECTIONS
            )
        url = f"{self.base_url()}/{path}"
        with self._slots.slot():
            return self._send(method, url, headers={"Authorization": header}, **kwargs)

    def _post_form(self, url: str, form: Mapping[str, str]) -> requests.Response:
        return self._send(
            "POST", url, data=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )

    def _error_for(self, response: requests.Response) -> BackendError | None:
        status = response.status_code
        if status < 400:
            return None
        body = json_or_none(response)
        body = body if isinstance(body, Mapping) else None
        title = str((body or {}).get("title") or "")
        detail = str((body or {}).get("detail") or title or f"HTTP {status}")
        if status == 403 and body is None:
            # The firewall throttling a busy account (mailchimp_api.md §7): as a 429.
            return self._rate_limited(response, message=detail, code=None)
        common = self._common_error(response, message=detail, code=title or None)
        if common is not None:
            return common
        if status == 401 or (status == 403 and title in ("User Disabled", "Wrong Datacenter")):
            return AuthRevoked(
                _(
                    "Mailchimp no longer accepts this connection's credentials (%(detail)s). Edit "
                    "the connection and enter a new API key or authenticate again."
                )
                % {"detail": detail},
                code=title or None,
                status=status,
            )
        error_class: type[Permanent] = Permanent
        message: LaterText = _("Mailchimp refused the request: %(detail)s")
        if status == 404:
            error_class = NotFound
            message = _("Mailchimp could not find this item: %(detail)s")
        elif status == 405:
            error_class = NotRemovable
        return error_class(message % {"detail": detail}, code=title or None, status=status)

    def _api(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        response = self._send_api(method, path, params=params, json=json)
        error = self._error_for(response)
        if isinstance(error, AuthRevoked):
            self.store.auth_failed(error.message)
        if error:
            raise error
        return json_or_none(response)


def _read_results(archive: bytes) -> dict[str, OperationResult]:
    """The results in a batch's archive, by operation id: every JSON file in it holds an array
    of ``{"status_code", "operation_id", "response"}``, the response a JSON string."""
    results: dict[str, OperationResult] = {}
    read = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar:
                if not member.isfile() or not member.name.endswith(".json"):
                    continue
                read += member.size
                if read > MAX_RESULTS_READ_BYTES:
                    raise Permanent(_("Mailchimp's batch results are larger than expected."))
                handle = tar.extractfile(member)
                entries = jsonlib.loads(handle.read()) if handle is not None else []
                for entry in entries if isinstance(entries, list) else []:
                    if not isinstance(entry, Mapping) or entry.get("operation_id") is None:
                        continue
                    text = entry.get("response")
                    try:
                        body = jsonlib.loads(text) if isinstance(text, str) and text else None
                    except ValueError:
                        body = None
                    results[str(entry["operation_id"])] = OperationResult(
                        int(entry.get("status_code") or 0), body
                    )
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        raise Transient(
            _("Mailchimp's batch results could not be read: %(reason)s")
            % {"reason": type(error).__name__}
        ) from None
    return results


def _items(body: Any, key: str) -> list[Mapping[str, Any]]:
    items = body.get(key) if isinstance(body, Mapping) else None
    return [item for item in items or () if isinstance(item, (dict, Mapping))]


def _total(body: Any) -> int:
    try:
        return int(body.get("total_items") or 0) if isinstance(body, Mapping) else 0
    except (TypeError, ValueError):
        return 0


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
