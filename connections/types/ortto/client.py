"""A thin client for Ortto's person and audience API v1 (API key, one host per region).

Contract: ``shared/spec/ortto_api.md``. All HTTP goes through ``_api`` (the ``X-Api-Key``
header, the region's host from ``ORTTO_API_URLS``) and the shared ``ServiceClient._send``;
every error response becomes a typed error in ``_error_for``: a 429 waits as long as its
body's ``try-in-seconds`` says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests
from django.conf import settings

from config.translation import gettext_later as _
from connections.types.base import AuthRevoked, BackendError, CredentialStore, Permanent
from connections.types.http import DEFAULT_TIMEOUT, ServiceClient, json_or_none

MAX_PEOPLE = 100
AUDIENCE_PAGE = 40
#: People or suppressed addresses per consent read page: Ortto's most (a larger ``limit`` falls
#: back to 50, ortto_api.md §10).
CONSENT_PAGE = 500
#: People whose email permission is off (§10).
PERMISSION_OFF = {"$bol::is": {"field_id": "bol::p", "value": False}}
REGIONS = ("global", "au", "eu")


class OrttoClient(ServiceClient):
    """One client per connection (or per setup, with a ``MemoryCredentialStore``)."""

    service = "Ortto"
    destination = "ortto"

    def __init__(
        self,
        store: CredentialStore | None = None,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ):
        region = str((store.load() if store is not None else {}).get("region") or "global")
        urls = settings.ORTTO_API_URLS
        self.api_url = urls.get(region, urls["global"]).rstrip("/")
        super().__init__(store, base_url=self.api_url, session=session, timeout=timeout)

    def audiences(self, *, limit: int = AUDIENCE_PAGE) -> list[dict[str, Any]]:
        """Every audience with its filter (40 a page, the most Ortto gives)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self._api(
                "POST",
                "audiences/get",
                {"limit": limit, "offset": len(found), "with_filter": True},
            )
            page = page if isinstance(page, list) else []
            found += page
            if len(page) < limit:
                return found

    def custom_fields(self) -> list[dict[str, Any]]:
        """The instance's person custom fields: ``{"id", "name", "display_type"}`` each, with
        ``dic_items`` for selects (§9)."""
        reply = self._api("POST", "person/custom-field/get", {}) or {}
        return [
            dict(item["field"])
            for item in reply.get("fields") or []
            if isinstance(item, Mapping) and isinstance(item.get("field"), Mapping)
        ]

    def create_custom_field(
        self, name: str, field_type: str, values: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Create a person custom field; returns ``{"name", "field_id", "display_type",
        "values"}``."""
        body: dict[str, Any] = {"type": field_type, "name": name, "track_changes": False}
        if values:
            body["values"] = list(values)
        return self._api("POST", "person/custom-field/create", body) or {}

    def merge(
        self,
        people: Sequence[Mapping[str, Any]],
        *,
        skip_non_existing: bool = False,
        tags: Sequence[tuple[Sequence[str], Sequence[str]]] | None = None,
    ) -> list[dict[str, Any]]:
        """Create or update up to 100 people matched by email (their ``fields``; ``tags``:
        each person's tags to set and to unset, in the same order); returns ``people[]`` of
        the reply, in the order sent (each with ``status``)."""
        if len(people) > MAX_PEOPLE:
            raise ValueError(f"Ortto merges at most {MAX_PEOPLE} people per call.")
        entries: list[dict[str, Any]] = [{"fields": dict(fields)} for fields in people]
        for entry, (added, unset) in zip(entries, tags or (), strict=False):
            if added:
                entry["tags"] = list(added)
            if unset:
                entry["unset_tags"] = list(unset)
        body = {
            "people": entries,
            "async": False,
            "merge_by": ["str::email"],
            "merge_strategy": 2,
            "find_strategy": 0,
            "skip_non_existing": skip_non_existing,
            "suppression_list_field_id": "str::email",
        }
        reply = self._api("POST", "person/merge", body)
        return list((reply or {}).get("people") or [])

    def email_permissions(self, emails: Sequence[str]) -> dict[str, bool]:
        """Whether each person Ortto holds may be emailed (its email permission), by lower-cased
        address; addresses Ortto holds no one for are left out. Up to 100 at once."""
        if not emails:
            return {}
        if len(emails) > MAX_PEOPLE:
            raise ValueError(f"Ortto reads at most {MAX_PEOPLE} people per call.")
        body = {"people": [{"email": email} for email in emails]}
        people = (self._api("POST", "person/subscriptions", body) or {}).get("people") or []
        return {
            str(person.get("email") or "").strip().lower(): person["email_permissions"]
            for person in people
            if isinstance(person, Mapping) and isinstance(person.get("email_permissions"), bool)
        }

    def find_person_id(self, email: str) -> str | None:
        """The id of the person with this address, or None when Ortto has none: a merge that
        changes nothing (``merge_strategy`` 3) and creates no one (``skip_non_existing``)."""
        body = {
            "people": [{"fields": {"str::email": email}}],
            "async": False,
            "merge_by": ["str::email"],
            "merge_strategy": 3,
            "find_strategy": 0,
            "skip_non_existing": True,
        }
        people = (self._api("POST", "person/merge", body) or {}).get("people") or []
        found = people[0] if people and isinstance(people[0], Mapping) else {}
        return str(found.get("person_id") or "") or None

    def archive(self, person_ids: Sequence[str]) -> None:
        self._api("PUT", "person/archive", {"inclusion_ids": list(person_ids)})

    def delete(self, person_ids: Sequence[str]) -> None:
        """Delete archived people (Ortto deletes no one who is not archived)."""
        self._api("DELETE", "person/delete", {"inclusion_ids": list(person_ids)})

    # Consent read-back (ortto_api.md §10) ------------------------------------------------------

    def people_without_permission(
        self, *, offset: int
    ) -> tuple[list[Mapping[str, Any]], int, bool]:
        """One page (500) of the people whose email permission (``bol::p``) is off: their
        ``fields`` (``str::email``, ``bol::p``), the offset of the next page and whether there
        is one."""
        body = {
            "limit": CONSENT_PAGE,
            "offset": offset,
            "fields": ["str::email", "bol::p"],
            "filter": PERMISSION_OFF,
        }
        reply = self._api("POST", "person/get", body)
        contacts = reply.get("contacts") if isinstance(reply, Mapping) else None
        found = [item for item in contacts or () if isinstance(item, Mapping)]
        return found, *_next_page(reply, offset, found)

    def suppressed_page(self, *, offset: int) -> tuple[list[Mapping[str, Any]], int, bool]:
        """One page (500) of the email suppression list: each entry ``{"email"}`` (with
        ``reason`` or a date when Ortto gives them), the next offset and whether there is
        more. Ortto does not document the answer's shape (§10): a bare array, or entries as
        plain addresses, are read too."""
        body = {"limit": CONSENT_PAGE, "offset": offset, "sort": "email", "sort_order": "desc"}
        reply = self._api("POST", "suppression-list/email/get", body)
        entries = reply if isinstance(reply, list) else None
        if isinstance(reply, Mapping):
            entries = reply.get("emails")
        found = [
            {"email": item} if isinstance(item, str) else item
            for item in entries or ()
            if isinstance(item, str | Mapping)
        ]
        return found, *_next_page(reply, offset, found)

    # The one way out, and the one place errors are made ----------------------------------------

    def _error_for(self, response: requests.Response) -> BackendError | None:
        status = response.status_code
        if status < 400:
            return None
        body = json_or_none(response)
        error = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(error, Mapping):
            code = str(error.get("code") or "") or None
            message = str(error.get("message") or code or f"HTTP {status}")
        else:
            code = None
            message = str(error or (response.text or "")[:200] or f"HTTP {status}")
        common = self._common_error(
            response, message=message, code=code, wait=_try_in_seconds(error)
        )
        if common is not None:
            return common
        if status in (401, 403):
            return AuthRevoked(
                _(
                    "Ortto rejected the stored API key (%(message)s). Check the region, or edit "
                    "the connection and enter a new API key."
                )
                % {"message": message},
                code=code,
                status=status,
            )
        if status == 404:
            return Permanent(
                _("Ortto could not find this item: %(message)s") % {"message": message},
                code=code,
                status=status,
            )
        return Permanent(
            _("Ortto refused the request: %(message)s") % {"message": message},
            code=code,
            status=status,
        )

    def _api(self, method: str, path: str, body: Any) -> Any:
        key = str(self.store.load().get("api_key") or "")
        response = self._send(
            method, f"{self.api_url}/{path}", json=body, headers={"X-Api-Key": key}
        )
        error = self._error_for(response)
        if isinstance(error, AuthRevoked):
            self.store.auth_failed(error.message)
        if error:
            raise error
        return json_or_none(response)


def _next_page(reply: Any, offset: int, found: list) -> tuple[int, bool]:
    """The next page's offset and whether there is one: ``next_offset`` and ``has_more`` when
    the reply says, else a full page means more. A reply that would not move on ends."""
    reply = reply if isinstance(reply, Mapping) else {}
    try:
        following = int(reply["next_offset"])
    except (KeyError, TypeError, ValueError):
        following = offset + len(found)
    more = reply.get("has_more")
    has_more = bool(more) if isinstance(more, bool) else len(found) >= CONSENT_PAGE
    if following <= offset:
        following = offset + len(found)
        has_more = has_more and bool(found)
    return following, has_more


def _try_in_seconds(error: Any) -> float | None:
    if not isinstance(error, Mapping):
        return None
    try:
        return max(0.0, float(error["try-in-seconds"]))
    except (KeyError, TypeError, ValueError):
        return None
