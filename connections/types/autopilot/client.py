"""A thin client for the Autopilot (Autopilot Journeys) REST API v1.

Contract: ``shared/spec/autopilot_api.md``. All HTTP goes through ``_api``, which adds the
``autopilotapikey`` header and sends through the shared ``ServiceClient._send``; every error
response becomes a typed error in ``_error_for`` (both error body shapes, ``{"error",
"message"}`` and restify's ``{"code", "message"}``, and empty ones).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from config.translation import LaterText
from config.translation import gettext_later as _
from connections.types.base import (
    AuthRevoked,
    BackendError,
    CredentialStore,
    ListNotFound,
    Permanent,
)
from connections.types.http import DEFAULT_TIMEOUT, ServiceClient, json_or_none

SERVICE = "Autopilot"
MAX_BULK = 100
_WHITESPACE = re.compile(r"\s+")
_MAX_PAGES = 1_000_000  # a guard against a service that keeps returning the same bookmark


def custom_key(field_type: str, name: str) -> str:
    """The ``custom`` key of a field: ``<type>--<Name>`` with each run of whitespace in the
    name turned into ``--`` (§7): ``("string", "Test Field")`` → ``string--Test--Field``."""
    return f"{field_type}--{_WHITESPACE.sub('--', name.strip())}"


class NotFound(Permanent):
    """A 404, with the service's own words (``service_message``; empty when it sent none)."""

    def __init__(self, message: LaterText | str, *, service_message: str, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.service_message = service_message


def list_not_found(list_id: str, error: NotFound) -> ListNotFound:
    return ListNotFound(service=SERVICE, list_id=list_id, code=error.code, status=error.status)


class AutopilotClient(ServiceClient):
    """One client per connection (or per setup, with a ``MemoryCredentialStore``). Autopilot
    allows 5 requests per second per key and sends no rate headers: an unhinted 429 waits the
    default second, then backs off."""

    service = SERVICE
    destination = "autopilot"

    def __init__(
        self,
        store: CredentialStore | None = None,
        *,
        api_url: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ):
        self.api_url = (api_url or settings.AUTOPILOT_API_URL).rstrip("/")
        super().__init__(store, base_url=self.api_url, session=session, timeout=timeout)

    # Lists -------------------------------------------------------------------------------------

    def lists(self) -> list[dict[str, Any]]:
        return (self._api("GET", "lists") or {}).get("lists") or []

    def create_list(self, name: str) -> str:
        return self._api("POST", "list", json={"name": name})["list_id"]

    def find_or_create_list(self, name: str) -> str:
        """The list with this title, created when missing (the service may allow duplicates)."""
        for item in self.lists():
            if item.get("title") == name:
                return item["list_id"]
        return self.create_list(name)

    def list_contacts(self, list_id: str) -> Iterator[dict[str, Any]]:
        """Every contact on the list, 100 per page; the last page carries no bookmark."""
        path = f"list/{quote(list_id, safe='')}/contacts"
        bookmark = None
        for _page in range(_MAX_PAGES):
            suffix = f"/{quote(bookmark, safe='')}" if bookmark else ""
            try:
                body = self._api("GET", path + suffix) or {}
            except NotFound as error:
                raise list_not_found(list_id, error) from None
            contacts = body.get("contacts") or []
            yield from contacts
            next_bookmark = body.get("bookmark")
            if not contacts or not next_bookmark or next_bookmark == bookmark:
                return
            bookmark = next_bookmark

    def remove_from_list(self, list_id: str, contact: str) -> bool:
        """Take a contact (id or email) off a list; False when Autopilot has no such contact.

        Any other 404 (an unknown list answers with an empty body, or names the list) is an
        error: counting it as "not there" would record every address as removed.
        """
        try:
            self._api("DELETE", f"list/{quote(list_id, safe='')}/contact/{quote(contact, safe='')}")
        except NotFound as error:
            if "contact" in error.service_message.lower():
                return False
            raise list_not_found(list_id, error) from None
        return True

    # Contacts ----------------------------------------------------------------------------------

    def contact(self, contact: str) -> dict[str, Any] | None:
        """The contact (id or email), or None when Autopilot has no such contact."""
        try:
            return self._api("GET", f"contact/{quote(contact, safe='')}") or {}
        except NotFound as error:
            if "contact" in error.service_message.lower():
                return None
            raise

    def delete_contact(self, contact: str) -> bool:
        """Delete a contact (id or email) from the account, every list with it; False when
        Autopilot has no such contact."""
        try:
            self._api("DELETE", f"contact/{quote(contact, safe='')}")
        except NotFound as error:
            if "contact" in error.service_message.lower():
                return False
            raise
        return True

    def contacts_page(self, bookmark: str | None = None) -> dict[str, Any]:
        """One page of the account's contacts (100 a page): ``GET /contacts``, then
        ``GET /contacts/{bookmark}`` with the previous page's ``bookmark``, which the last page
        leaves out (§2, §8)."""
        suffix = f"/{quote(bookmark, safe='')}" if bookmark else ""
        body = self._api("GET", "contacts" + suffix)
        return body if isinstance(body, dict) else {}

    def custom_fields(self) -> list[dict[str, Any]]:
        """The account's custom fields: ``{"name", "fieldType"}`` each (§7)."""
        fields = self._api("GET", "contacts/custom_fields")
        return [dict(item) for item in fields or [] if isinstance(item, Mapping)]

    def upsert_contacts(
        self, contacts: Sequence[Mapping[str, Any]], *, list_id: str = ""
    ) -> dict[str, Any]:
        """Add or update up to 100 contacts (keyed on ``Email``); returns the service's reply,
        whose ``email_contact_map`` names the contact each address became.

        ``list_id`` is the list the contacts name in ``_autopilot_list``: the only thing this
        call can fail to find, so a 404 is ``ListNotFound``."""
        if not contacts:
            return {"contact_ids": [], "email_contact_map": {}}
        if len(contacts) > MAX_BULK:
            raise ValueError(f"Autopilot upserts at most {MAX_BULK} contacts per call.")
        try:
            return self._api("POST", "contacts", json={"contacts": list(contacts)}) or {}
        except NotFound as error:
            if not list_id:
                raise
            raise list_not_found(list_id, error) from None

    # The one way out, and the one place errors are made ----------------------------------------

    def _error_for(self, response: requests.Response) -> BackendError | None:
        status = response.status_code
        if status < 400:
            return None
        body = json_or_none(response)
        body = body if isinstance(body, Mapping) else {}
        code = body.get("error") or body.get("code")
        message = str(body.get("message") or code or f"HTTP {status}")
        common = self._common_error(response, message=message, code=code)
        if common is not None:
            return common
        if status in (401, 403) or "autopilotapikey" in message.lower():
            return AuthRevoked(
                _(
                    "Autopilot rejected the stored API key (%(message)s). Edit the connection "
                    "and enter a new API key."
                )
                % {"message": message},
                code=code,
                status=status,
            )
        if status == 404:
            return NotFound(
                _("Autopilot could not find this item: %(message)s") % {"message": message},
                service_message=str(body.get("message") or ""),
                code=code,
                status=status,
            )
        return Permanent(
            _("Autopilot refused the request: %(message)s") % {"message": message},
            code=code,
            status=status,
        )

    def _api(self, method: str, path: str, *, json: Any = None) -> Any:
        key = str(self.store.load().get("api_key") or "")
        response = self._send(
            method, f"{self.api_url}/{path}", json=json, headers={"autopilotapikey": key}
        )
        error = self._error_for(response)
        if isinstance(error, AuthRevoked):
            self.store.auth_failed(error.message)
        if error:
            raise error
        return json_or_none(response)
