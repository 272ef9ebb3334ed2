"""A thin client for the Campaign Monitor (createsend) API v3.3 with OAuth 2.

Contract: ``shared/spec/campaign_monitor_api.md``. All HTTP goes through ``_send``; every error
response becomes a typed error in ``_error_for``; every API call goes through ``_api``, which adds
the Bearer token, refreshes it ahead of expiry and on Code 120/121 (then retries once), and records
a revoked authorization on the connection.

Response keys are read case-insensitively: the service ignores case and so do we.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import requests
from django.conf import settings

from config.translation import gettext_later as _
from connections.types.base import (
    AuthExpired,
    AuthRevoked,
    BackendError,
    CredentialStore,
    ListNotFound,
    Permanent,
    Transient,
)
from connections.types.http import DEFAULT_TIMEOUT, ServiceClient, json_or_none

logger = logging.getLogger(__name__)

SERVICE = "Campaign Monitor"
#: The campaigns and their spam complaints the consent read-back reads (§11).
REPORTS_SCOPE = "ViewReports"
SCOPE = f"ManageLists,ImportSubscribers,{REPORTS_SCOPE}"
MAX_IMPORT = 1000
#: The largest page a paged read returns (§3).
MAX_PAGE_SIZE = 1000
#: The list reads of people who opted out or bounced (§11); ``deleted`` is not an opt-out.
OPT_OUT_KINDS = ("unsubscribed", "bounced")
#: Without a rate header, wait this long before the first retry (the caller backs off further).
DEFAULT_RATE_LIMIT_WAIT = 5.0
#: Refresh this many seconds before the stored expiry (at most a tenth of the token's lifetime).
REFRESH_AHEAD = 300.0

CODE_PARTIAL_IMPORT = 210
CODES_EXPIRED = {120, 121}  # invalid or expired token: one refresh may fix it
CODE_REVOKED = 122
#: Invalid ListID / Invalid ClientID: an item this account does not have (answered with 401).
CODE_INVALID_LIST = 101
CODES_NOT_IN_ACCOUNT = {CODE_INVALID_LIST, 102}


def ci_get(mapping: Any, key: str, default: Any = None) -> Any:
    """``mapping[key]`` ignoring the case of the key (the API's keys vary in case)."""
    if not isinstance(mapping, Mapping):
        return default
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for candidate, value in mapping.items():
        if isinstance(candidate, str) and candidate.lower() == lowered:
            return value
    return default


class ScopeMissing(Permanent):
    """Campaign Monitor refused a call that needs a scope the connection was not authorised
    for (it was authorised before we asked for that scope): the connection itself is fine."""


@dataclass(frozen=True)
class ImportFailure:
    email: str
    code: str
    message: str


@dataclass
class ImportResult:
    """The reply to an import: counts and the subscribers that failed (Code 210)."""

    submitted: int
    new: int = 0
    existing: int = 0
    duplicates: list[str] = field(default_factory=list)
    failures: list[ImportFailure] = field(default_factory=list)


def tokens_from(body: Any) -> dict[str, Any]:
    """The credentials to store from a token response."""
    access = ci_get(body, "access_token")
    refresh = ci_get(body, "refresh_token")
    if not access or not refresh:
        raise Transient(_("Campaign Monitor sent an unreadable token response. Try again."))
    try:
        expires_in = float(ci_get(body, "expires_in", 1209600))
    except (TypeError, ValueError):
        expires_in = 1209600.0
    return {
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": expires_in,
        "expires_at": time.time() + expires_in,
    }


class CampaignMonitorClient(ServiceClient):
    """One client per connection (or per setup, with a ``MemoryCredentialStore``)."""

    service = SERVICE
    destination = "campaign_monitor"
    default_rate_limit_wait = DEFAULT_RATE_LIMIT_WAIT

    def __init__(
        self,
        store: CredentialStore | None = None,
        *,
        api_url: str | None = None,
        oauth_url: str | None = None,
        token_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ):
        self.api_url = (api_url or settings.CAMPAIGN_MONITOR_API_URL).rstrip("/")
        self.oauth_url = oauth_url or settings.CAMPAIGN_MONITOR_OAUTH_URL
        self.token_url = token_url or settings.CAMPAIGN_MONITOR_TOKEN_URL
        self.client_id = client_id if client_id is not None else settings.CAMPAIGN_MONITOR_CLIENT_ID
        self.client_secret = (
            client_secret if client_secret is not None else settings.CAMPAIGN_MONITOR_CLIENT_SECRET
        )
        super().__init__(
            store, base_url=self.api_url, session=session, timeout=timeout, json_body=False
        )

    # OAuth -----------------------------------------------------------------------------------

    def authorize_url(self, *, redirect_uri: str, state: str) -> str:
        if not self.client_id or not self.client_secret:
            raise Permanent(
                _(
                    "Campaign Monitor is not set up on this server: set CAMPAIGN_MONITOR_CLIENT_ID "
                    "and CAMPAIGN_MONITOR_CLIENT_SECRET, then try again."
                )
            )
        query = {
            "type": "web_server",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": state,
        }
        separator = "&" if "?" in self.oauth_url else "?"
        return f"{self.oauth_url}{separator}{urlencode(query)}"

    def exchange_code(self, *, code: str, redirect_uri: str) -> dict[str, Any]:
        """Trade the callback's code for tokens; returns the credentials to store."""
        form = {
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": redirect_uri,
            "code": code,
        }
        response = self._send("POST", self.token_url, data=form)
        error = self._error_for(response, oauth_step="exchange")
        if error:
            raise error
        return tokens_from(json_or_none(response))

    def refresh_tokens(self, refresh_token: str) -> dict[str, Any]:
        """New tokens for a refresh token. The service may rotate the refresh token, so the whole
        result must be stored."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        response = self._send("POST", self.token_url, data=form)
        error = self._error_for(response, oauth_step="refresh")
        if error:
            raise error
        logger.info("Campaign Monitor access token refreshed")
        return tokens_from(json_or_none(response))

    # API ---------------------------------------------------------------------------------------

    def clients(self) -> list[dict[str, Any]]:
        return self._api("GET", "clients.json").json() or []

    def lists(self, client_id: str) -> list[dict[str, Any]]:
        return self._api("GET", f"clients/{quote(client_id, safe='')}/lists.json").json() or []

    def list_details(self, list_id: str) -> dict[str, Any]:
        path = f"lists/{quote(list_id, safe='')}.json"
        return self._api("GET", path, list_id=list_id).json() or {}

    def custom_fields(self, list_id: str) -> list[dict[str, Any]]:
        path = f"lists/{quote(list_id, safe='')}/customfields.json"
        return self._api("GET", path, list_id=list_id).json() or []

    def create_custom_field(
        self,
        list_id: str,
        name: str,
        *,
        data_type: str = "Text",
        options: Sequence[str] = (),
        visible_in_preference_center: bool = True,
    ) -> str:
        """Create a custom field; returns its key, e.g. ``[newdatefield]``."""
        body = {
            "FieldName": name,
            "DataType": data_type,
            "Options": list(options),
            "VisibleInPreferenceCenter": visible_in_preference_center,
        }
        response = self._api(
            "POST", f"lists/{quote(list_id, safe='')}/customfields.json", json=body, list_id=list_id
        )
        key = json_or_none(response)
        return key if isinstance(key, str) else f"[{name}]"

    def import_subscribers(
        self, list_id: str, subscribers: Sequence[Mapping[str, Any]], *, resubscribe: bool = False
    ) -> ImportResult:
        """Add or update up to 1,000 subscribers at once.

        The reply to a partly failed import (HTTP 400, Code 210) is not an error here: it is a
        result whose ``failures`` name the refused subscribers.
        """
        if not subscribers:
            return ImportResult(submitted=0)
        if len(subscribers) > MAX_IMPORT:
            raise ValueError(f"Campaign Monitor imports at most {MAX_IMPORT} subscribers per call.")
        body = {
            "Subscribers": list(subscribers),
            "Resubscribe": resubscribe,
            "QueueSubscriptionBasedAutoResponders": False,
            "RestartSubscriptionBasedAutoresponders": False,
        }
        response = self._api(
            "POST",
            f"subscribers/{quote(list_id, safe='')}/import.json",
            json=body,
            accept_codes={CODE_PARTIAL_IMPORT},
            list_id=list_id,
        )
        reply = json_or_none(response) or {}
        if ci_get(reply, "ResultData") is not None:
            reply = ci_get(reply, "ResultData")
        failures = [
            ImportFailure(
                email=str(ci_get(detail, "EmailAddress", "")),
                code=str(ci_get(detail, "Code", "")),
                message=str(ci_get(detail, "Message", "")),
            )
            for detail in ci_get(reply, "FailureDetails") or []
        ]
        return ImportResult(
            submitted=len(subscribers),
            new=int(ci_get(reply, "TotalNewSubscribers", 0) or 0),
            existing=int(ci_get(reply, "TotalExistingSubscribers", 0) or 0),
            duplicates=[str(email) for email in ci_get(reply, "DuplicateEmailsInSubmission") or []],
            failures=failures,
        )

    def client_details(self, client_id: str) -> dict[str, Any]:
        """``GET /clients/{id}.json``: ``BasicDetails`` holds the client's ``TimeZone``."""
        return self._api("GET", f"clients/{quote(client_id, safe='')}.json").json() or {}

    def list_opt_outs(
        self, list_id: str, kind: str, *, date: str, page: int, page_size: int = MAX_PAGE_SIZE
    ) -> dict[str, Any]:
        """One page of a list's ``unsubscribed`` or ``bounced`` subscribers whose state changed
        on or after ``date`` (YYYY-MM-DD; "" for all), oldest first (§11): the paged envelope."""
        if kind not in OPT_OUT_KINDS:
            raise ValueError(f"kind must be one of {OPT_OUT_KINDS}, not {kind!r}")
        path = f"lists/{quote(list_id, safe='')}/{kind}.json"
        return self._page(
            path,
            page,
            page_size,
            list_id=list_id,
            date=date,
            orderfield="date",
            orderdirection="asc",
        )

    def suppression_list(
        self, client_id: str, *, page: int, page_size: int = MAX_PAGE_SIZE
    ) -> dict[str, Any]:
        """One page of the client's suppression list, newest first: it has no date filter, so
        a reader stops at the first entry older than it needs (§11)."""
        path = f"clients/{quote(client_id, safe='')}/suppressionlist.json"
        return self._page(path, page, page_size, orderfield="date", orderdirection="desc")

    def sent_campaigns(
        self, client_id: str, *, sent_from: str, page: int, page_size: int = MAX_PAGE_SIZE
    ) -> dict[str, Any]:
        """One page of the client's sent campaigns, sent on or after the day ``sent_from``
        (YYYY-MM-DD; "" for all), oldest first: campaigns sent meanwhile come at the end, so a
        read that goes on page by page neither skips nor repeats one (§11, PY
        ``Client.campaigns``)."""
        path = f"clients/{quote(client_id, safe='')}/campaigns.json"
        return self._page(
            path, page, page_size, scope=REPORTS_SCOPE, sentfromdate=sent_from, orderdirection="asc"
        )

    def campaign_spam(
        self, campaign_id: str, *, date: str, page: int, page_size: int = MAX_PAGE_SIZE
    ) -> dict[str, Any]:
        """One page of the spam complaints about a campaign made on or after ``date``
        (YYYY-MM-DD; "" for all), oldest first: items ``{EmailAddress, ListID, Date}`` (§11,
        PY ``Campaign.spam``)."""
        path = f"campaigns/{quote(campaign_id, safe='')}/spam.json"
        return self._page(
            path,
            page,
            page_size,
            scope=REPORTS_SCOPE,
            date=date,
            orderfield="date",
            orderdirection="asc",
        )

    def _page(
        self,
        path: str,
        page: int,
        page_size: int,
        *,
        list_id: str = "",
        scope: str = "",
        **filters: str,
    ) -> dict[str, Any]:
        """One page of a paged read (§3): the envelope, or {} for an empty reply."""
        params = {**filters, "page": page, "pagesize": page_size}
        reply = self._api("GET", path, params=params, list_id=list_id, scope=scope)
        return json_or_none(reply) or {}

    def subscriber_state(self, list_id: str, email: str) -> str:
        """The subscriber's ``State`` in this list (Active, Unsubscribed, Bounced, Deleted,
        Unconfirmed); a ``Permanent`` error with code 203 when the address is not in it."""
        response = self._api(
            "GET",
            f"subscribers/{quote(list_id, safe='')}.json",
            params={"email": email},
            list_id=list_id,
        )
        return str(ci_get(json_or_none(response) or {}, "State", ""))

    def delete_subscriber(self, list_id: str, email: str) -> None:
        self._api(
            "DELETE",
            f"subscribers/{quote(list_id, safe='')}.json",
            params={"email": email},
            list_id=list_id,
        )

    # The one way out, and the one place errors are made ----------------------------------------

    def _error_for(
        self,
        response: requests.Response,
        *,
        accept_codes: set[int] | frozenset[int] = frozenset(),
        oauth_step: str = "",
        list_id: str = "",
    ) -> BackendError | None:
        """The typed error for a response, or None when it succeeded. ``list_id`` names the
        list the call is about: an answer that the list does not exist is ``ListNotFound``."""
        status = response.status_code
        if status < 400:
            return None
        body = json_or_none(response)
        code = ci_get(body, "Code")
        with contextlib.suppress(TypeError, ValueError):
            code = int(code)
        message = str(ci_get(body, "Message") or ci_get(body, "error_description") or "")
        common = self._common_error(
            response, message=message or _("rate limit exceeded"), code=code
        )
        if common is not None:
            return common
        if oauth_step:
            oauth_error = str(ci_get(body, "error") or "")
            detail = message or oauth_error or f"HTTP {status}"
            if oauth_step == "refresh":
                return AuthRevoked(
                    _(
                        "Campaign Monitor no longer accepts this connection's authorization "
                        "(%(detail)s). Edit the connection and select Authenticate with Campaign "
                        "Monitor again."
                    )
                    % {"detail": detail},
                    code=oauth_error or None,
                    status=status,
                )
            return Permanent(
                _(
                    "Campaign Monitor did not accept the sign-in (%(detail)s). Select "
                    "Authenticate with Campaign Monitor to try again."
                )
                % {"detail": detail},
                code=oauth_error or None,
                status=status,
            )
        if status == 400 and code in accept_codes:
            return None
        # An unknown or deleted list: 400 or 401 with Code 101 (the contract is unsure which).
        if list_id and ((code == CODE_INVALID_LIST and status in (400, 401)) or status == 404):
            return ListNotFound(service=SERVICE, list_id=list_id, code=code, status=status)
        if status == 401 and code in CODES_NOT_IN_ACCOUNT:
            return Permanent(
                _(
                    "Campaign Monitor says this account has no such list or client (%(detail)s). "
                    "Check the list ID of the export."
                )
                % {"detail": message or f"code {code}"},
                code=code,
                status=status,
            )
        if status == 401 and code in CODES_EXPIRED:
            return AuthExpired(
                _("Campaign Monitor says the access token expired."), code=code, status=status
            )
        if status == 401:
            return AuthRevoked(
                _(
                    "Campaign Monitor no longer accepts this connection's authorization "
                    "(%(detail)s). Edit the connection and select Authenticate with Campaign "
                    "Monitor again."
                )
                % {"detail": message or f"code {code}"},
                code=code,
                status=status,
            )
        if status == 404:
            return Permanent(
                _("Campaign Monitor could not find this item (HTTP 404). Check the list ID."),
                code=code,
                status=status,
            )
        return Permanent(
            _("Campaign Monitor refused the request (code %(code)s): %(message)s")
            % {
                "code": code if code is not None else status,
                "message": message or f"HTTP {status}",
            },
            code=code,
            status=status,
        )

    def _api(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        accept_codes: set[int] | frozenset[int] = frozenset(),
        list_id: str = "",
        scope: str = "",
    ) -> requests.Response:
        """``scope``: a call that needs a scope connections authorised earlier were not asked
        for; its refusal is ``ScopeMissing``, and the connection stays as it is."""
        try:
            return self._api_with_refresh(method, path, params, json, accept_codes, list_id)
        except AuthRevoked as error:
            if scope:
                raise ScopeMissing(error.message, code=error.code, status=error.status) from error
            # Outside the token lock's transaction, so that the status change is kept.
            self.store.auth_failed(error.message)
            raise

    def _api_with_refresh(
        self, method, path, params, json, accept_codes, list_id
    ) -> requests.Response:
        url = f"{self.api_url}/{path}"
        credentials = self._fresh_credentials()
        for attempt in (1, 2):
            response = self._send(
                method,
                url,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {credentials['access_token']}"},
            )
            error = self._error_for(response, accept_codes=accept_codes, list_id=list_id)
            if error is None:
                return response
            if isinstance(error, AuthExpired) and attempt == 1:
                credentials = self._refresh(stale_access_token=credentials["access_token"])
                continue
            raise error
        raise AssertionError("unreachable")

    # Tokens ------------------------------------------------------------------------------------

    def _fresh_credentials(self) -> dict[str, Any]:
        credentials = self.store.load()
        if not credentials.get("access_token"):
            raise AuthRevoked(
                _(
                    "This connection has no Campaign Monitor authorization. Edit it and select "
                    "Authenticate with Campaign Monitor."
                )
            )
        if self._expiring(credentials):
            return self._refresh(stale_access_token=credentials["access_token"])
        return credentials

    @staticmethod
    def _expiring(credentials: Mapping[str, Any]) -> bool:
        expires_at = credentials.get("expires_at")
        if not expires_at:
            return False
        lifetime = float(credentials.get("expires_in") or REFRESH_AHEAD * 10)
        return time.time() >= float(expires_at) - min(REFRESH_AHEAD, lifetime / 10)

    def _refresh(self, *, stale_access_token: str) -> dict[str, Any]:
        """Refresh under the connection's lock. A worker that waited for the lock while another
        refreshed finds new tokens stored and uses them instead of spending the (possibly
        rotated, now invalid) refresh token a second time."""

        def change(current: dict[str, Any]) -> dict[str, Any] | None:
            if current.get("access_token") != stale_access_token and not self._expiring(current):
                return None
            if not current.get("refresh_token"):
                raise AuthRevoked(
                    _(
                        "This connection has no Campaign Monitor refresh token. Edit it and "
                        "select Authenticate with Campaign Monitor."
                    )
                )
            return {**current, **self.refresh_tokens(current["refresh_token"])}

        return self.store.update(change)
