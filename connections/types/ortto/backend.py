"""Ortto as an export destination: an API key and a region, person merges of 100.

Ortto's audiences are filters over person data: nobody is added to one directly
(ortto_api.md §4). An export therefore sends to an audience whose filter is "a Yes/No custom
field is true": every member gets that field set to true, and a mirror run sets it to false for
leavers, so the filter drops them. People are never archived (an archived person who comes back
is a new person without their opt-out history, §5).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy

from config.translation import LaterText
from config.translation import gettext_later as _
from connections.types.base import (
    DEFAULT_SEND_OPTIONS,
    Backend,
    DestinationField,
    DestinationList,
    ListNotFound,
    Permanent,
    PushResult,
    RateLimited,
    Record,
    RecordFailure,
    SendOptions,
    StepResult,
    StepSkipped,
    Transient,
    run_steps,
)
from connections.types.ortto.client import MAX_PEOPLE, OrttoClient
from connections.types.ortto.forms import OrttoCredentialsForm

MARKER = re.compile(r"bol:cm:[a-z0-9][a-z0-9-]*")
DONE = frozenset({"created", "merged", "ignored"})


def marker_of(audience: dict[str, Any]) -> str:
    """The Yes/No custom field the audience's filter uses, or "" when it uses none."""
    found = MARKER.search(json.dumps(audience.get("filter") or {}))
    return found.group(0) if found else ""


#: The code of a returning person found without email permission before being sent again.
OPTED_OUT_CODE = "unsubscribed"


class OrttoBackend(Backend):
    label = gettext_lazy("Ortto")
    icon = "img/connections/ortto.svg"
    help_template = "connections/ortto/_help.html"
    list_hint = gettext_lazy(
        "Ortto: pick an audience whose filter is “a Yes/No custom field is true”; the export "
        "sets that field on its people and clears it for those who leave."
    )
    fields_hint = gettext_lazy(
        "Ortto receives the first and last name as its first and last name fields."
    )
    batch_size = MAX_PEOPLE
    #: Clearing the marker reads up to 100 people's permissions, then merges them: one token.
    removal_batch_size = MAX_PEOPLE
    #: As Autopilot, which Ortto replaces: 100,000 profiles in total per export (product.md E5).
    max_profiles = 100_000
    #: The address is on Ortto's email suppression list, or a returning person's email
    #: permission is off.
    opted_out_codes = frozenset({"suppressed", OPTED_OUT_CODE})
    #: An address Ortto does not take.
    lasting_refusal_codes = frozenset({"invalid-email"})
    credentials_form_class = OrttoCredentialsForm

    credentials_rejected_message = _(
        "Ortto rejected this API key for this region. Check both and try again."
    )

    def __init__(self, store, *, client: OrttoClient | None = None):
        super().__init__(store)
        self.client = client or OrttoClient(store)
        self._markers: dict[str, str] = {}
        #: Whom ``erase`` found, by address: once archived, a person is not found by email.
        self._erasing: dict[str, str] = {}

    @property
    def rate_limit(self) -> float:  # type: ignore[override]
        """Requests per second per key: 5 by default (ortto_api.md §7), a setting per plan."""
        return settings.ORTTO_RATE_LIMIT

    def authenticate(self) -> None:
        self.client.audiences(limit=1)

    def test(self) -> list[StepResult]:
        found: dict[str, Any] = {}

        def credentials() -> LaterText:
            self.client.audiences(limit=1)
            return _("Ortto accepted the API key.")

        def audiences() -> LaterText:
            found["audiences"] = self.client.audiences()
            if not found["audiences"]:
                return _("No audiences found. Create an audience in Ortto first.")
            return _("Found %(count)d audiences.") % {"count": len(found["audiences"])}

        def markers() -> LaterText:
            usable = [a for a in found["audiences"] if marker_of(a)]
            if not found["audiences"]:
                raise StepSkipped(_("There is no audience to check. Create one in Ortto."))
            return _("%(usable)d of %(count)d audiences filter on a Yes/No custom field.") % {
                "usable": len(usable),
                "count": len(found["audiences"]),
            }

        return run_steps(
            [
                (_("API key accepted"), credentials),
                (_("Audiences readable"), audiences),
                (_("Audience filters readable"), markers),
            ],
            skip_message=_("Skipped: fix the failed step above first."),
        )

    def list_destinations(self) -> list[DestinationList]:
        destinations = []
        for audience in self.client.audiences():
            audience_id = str(audience.get("id"))
            name = str(audience.get("name") or audience_id)
            marker = marker_of(audience)
            self._markers[audience_id] = marker
            note = _("sets %(field)s") % {"field": marker} if marker else _NO_MARKER_NOTE
            destinations.append(DestinationList(id=audience_id, name=f"{name} ({note})"))
        return destinations

    def prepare(
        self,
        list_id: str,
        fields: Sequence[DestinationField],
        options: SendOptions = DEFAULT_SEND_OPTIONS,
    ) -> None:
        super().prepare(list_id, fields, options)
        with contextlib.suppress(RateLimited, Transient):
            self._marker(list_id)

    def push(self, list_id: str, batch: Sequence[Record]) -> PushResult:
        self._check_batch(batch)
        if not batch:
            return PushResult(accepted=0)
        marker = self._marker(list_id)
        # Returning people whose email permission is off are not sent: they stay as they are.
        returning = [record.email for record in batch if record.returning]
        permissions = self.client.email_permissions(returning) if returning else {}
        refused = {email for email, allowed in permissions.items() if not allowed}
        sending = [record for record in batch if record.email.lower() not in refused]
        failures = [
            RecordFailure(
                record.email,
                OPTED_OUT_CODE,
                _(
                    "Ortto holds this person without email permission: only they can "
                    "subscribe again, so they were not sent."
                ),
            )
            for record in batch
            if record.email.lower() in refused
        ]
        if not sending:
            return PushResult(accepted=0, failures=failures)
        people = []
        for record in sending:
            # No permission fields: merging data leaves an opt-out as it is (§6).
            fields: dict[str, Any] = {"str::email": record.email, marker: True}
            if record.first_name:
                fields["str::first"] = record.first_name
            if record.last_name:
                fields["str::last"] = record.last_name
            people.append(fields)
        result = self._result(batch_emails(sending), self.client.merge(people))
        result.failures[:0] = failures
        return result

    def remove(self, list_id: str, emails: Sequence[str]) -> PushResult:
        """Clear the marker: the audience's filter drops them. Nobody is archived, and
        addresses Ortto does not know are not created. Those whose email permission is off
        are reported as opted out: should Ortto lose the person (archived or deleted there),
        a return must not create them again with the default permission."""
        self._check_batch(emails, self.removal_batch_size)
        if not emails:
            return PushResult(accepted=0)
        marker = self._marker(list_id)
        permissions = self.client.email_permissions(emails)
        people = [{"str::email": email, marker: False} for email in emails]
        result = self._result(list(emails), self.client.merge(people, skip_non_existing=True))
        refused = {failure.email.lower() for failure in result.failures}
        result.opted_out = [
            email
            for email in emails
            if permissions.get(email.lower()) is False and email.lower() not in refused
        ]
        return result

    def erase(self, list_id: str, email: str) -> None:
        """Archive, then delete the person (Ortto deletes only archived people): they go from
        the whole account, not only from this audience's marker."""
        key = email.strip().lower()
        person_id = self._erasing.get(key) or self.client.find_person_id(email)
        if not person_id:
            return  # Ortto holds no one (not archived) with this address
        self._erasing[key] = person_id  # a retry after the archive finds them by id only
        self.client.archive([person_id])
        self.client.delete([person_id])

    # Helpers -------------------------------------------------------------------------------

    def _marker(self, audience_id: str) -> str:
        if not self._markers.get(audience_id):
            audience = next(
                (a for a in self.client.audiences() if str(a.get("id")) == audience_id), None
            )
            if audience is None:
                raise ListNotFound(service="Ortto", list_id=audience_id, status=404)
            self._markers[audience_id] = marker_of(audience)
        if not self._markers[audience_id]:
            raise Permanent(_NO_MARKER_ERROR % {"name": audience_id})
        return self._markers[audience_id]

    @staticmethod
    def _result(emails: list[str], people: list[dict[str, Any]]) -> PushResult:
        failures = []
        for position, email in enumerate(emails):
            person = people[position] if position < len(people) else {}
            status = str(person.get("status") or "")
            if status in DONE:
                continue
            error = person.get("error")
            code = str(error.get("code") or "error") if isinstance(error, dict) else "error"
            message = (
                str(error.get("message") or code) if isinstance(error, dict) else str(error or "")
            )
            failures.append(
                RecordFailure(email, code, message or _("Ortto did not accept this person."))
            )
        return PushResult(accepted=len(emails) - len(failures), failures=failures)


def batch_emails(batch: Sequence[Record]) -> list[str]:
    return [record.email for record in batch]


_NO_MARKER_NOTE = _("its filter uses no Yes/No custom field: not usable yet")
_NO_MARKER_ERROR = _(
    "The Ortto audience %(name)s does not filter on a Yes/No custom field, so the export cannot "
    "put people in it. In Ortto, create a Yes/No custom field, make the audience's filter "
    "“that field is true”, then run the export again."
)
