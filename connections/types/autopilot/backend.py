"""Autopilot as an export destination: an API key, bulk upserts of up to 100 contacts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from connections.types.autopilot.client import (
    MAX_BULK,
    AutopilotClient,
    custom_key,
    custom_value,
)
from connections.types.autopilot.forms import AutopilotCredentialsForm
from connections.types.base import (
    Backend,
    DestinationList,
    ListNotFound,
    Permanent,
    PushResult,
    Record,
    RecordFailure,
    StepResult,
    StepSkipped,
    run_steps,
)

#: Delivery events after which the contact is not mailed again (autopilot_api.md §8).
DO_NOT_MAIL_EVENTS = ("mail_unsubscribed", "mail_hardbounced", "mail_complained")
#: The code of a returning contact found opted out before being sent again.
OPTED_OUT_CODE = "unsubscribed"


def opted_out(contact: Mapping[str, Any] | None) -> bool:
    """Whether the contact unsubscribed, bounced hard or complained."""
    if not contact:
        return False
    return contact.get("unsubscribed") is True or any(
        contact.get(event) for event in DO_NOT_MAIL_EVENTS
    )


class AutopilotBackend(Backend):
    label = gettext_lazy("Autopilot")
    list_hint = gettext_lazy(
        "Autopilot: leave List ID empty and name a list here. Saving creates it in the account, "
        "or uses the account's list of that name if there is one."
    )
    fields_hint = gettext_lazy(
        "Autopilot receives the first and last name as FirstName and LastName."
    )
    icon = "img/connections/autopilot.svg"
    help_template = "connections/autopilot/_help.html"
    batch_size = MAX_BULK
    #: A removal reads the contact, then takes it off the list: each ``remove`` takes one
    #: token of the 5 calls a second, so one address per call (a 429 is waited out).
    removal_batch_size = 1
    #: Autopilot accepts at most 100,000 profiles in total per export (product.md, E5).
    max_profiles = 100_000
    #: A returning contact who unsubscribed (read before sending: ``push``).
    opted_out_codes = frozenset({OPTED_OUT_CODE})
    credentials_form_class = AutopilotCredentialsForm
    creates_lists = True

    credentials_rejected_message = _("Autopilot rejected this API key. Check it and try again.")

    def __init__(self, store, *, client: AutopilotClient | None = None):
        super().__init__(store)
        self.client = client or AutopilotClient(store)

    @property
    def rate_limit(self) -> float:  # type: ignore[override]
        """Requests per second per API key: Autopilot documents 5; a setting, for benchmarks."""
        return settings.AUTOPILOT_RATE_LIMIT

    def authenticate(self) -> None:
        self.client.lists()

    def test(self) -> list[StepResult]:
        found: dict[str, Any] = {}

        def credentials() -> str:
            found["lists"] = self.list_destinations()
            return _("Autopilot accepted the API key.")

        def lists() -> str:
            if not found["lists"]:
                return _("No lists found. Create a list in Autopilot before adding an export.")
            return _("Found %(count)d lists.") % {"count": len(found["lists"])}

        def members() -> str:
            if not found["lists"]:
                raise StepSkipped(_("There is no list to read. Create a list in Autopilot."))
            first = found["lists"][0]
            next(iter(self.client.list_contacts(first.id)), None)
            return _("Read the contacts of the list “%(name)s”.") % {"name": first.name}

        return run_steps(
            [
                (_("API key accepted"), credentials),
                (_("Lists readable"), lists),
                (_("List contacts readable"), members),
            ],
            skip_message=_("Skipped: fix the failed step above first."),
        )

    def list_destinations(self) -> list[DestinationList]:
        return [
            DestinationList(id=str(item.get("list_id")), name=str(item.get("title", "")))
            for item in self.client.lists()
        ]

    def create_destination(self, name: str) -> DestinationList:
        return DestinationList(id=str(self.client.find_or_create_list(name)), name=name)

    def push(self, list_id: str, batch: Sequence[Record]) -> PushResult:
        self._check_batch(batch)
        if not batch:
            return PushResult(accepted=0)
        # A returning contact may have been deleted at Autopilot since it left, and a new
        # contact is subscribed: those who opted out are read first and never sent.
        refused = [
            RecordFailure(
                email=record.email,
                code=OPTED_OUT_CODE,
                message=_(
                    "Autopilot holds this contact as unsubscribed: only they can subscribe "
                    "again, so they were not sent."
                ),
            )
            for record in batch
            if record.returning and opted_out(self.client.contact(record.email))
        ]
        skipped = {failure.email.lower() for failure in refused}
        sending = [record for record in batch if record.email.lower() not in skipped]
        reply = self.client.upsert_contacts(
            [self._contact(record, list_id) for record in sending], list_id=list_id
        )
        mapped = reply.get("email_contact_map")
        if not isinstance(mapped, dict):
            # Older replies carry only contact_ids: a 200 means every contact was taken.
            return PushResult(accepted=len(sending), failures=refused)
        known = {str(email).lower() for email in mapped}
        failures = refused + [
            RecordFailure(
                email=record.email,
                code="not_accepted",
                message=_("Autopilot did not accept this contact."),
            )
            for record in sending
            if record.email.lower() not in known
        ]
        return PushResult(accepted=len(batch) - len(failures), failures=failures)

    def remove(self, list_id: str, emails: Sequence[str]) -> PushResult:
        """Take leavers off the list (the contact stays in the account). Whether they opted
        out is read first and reported: the export remembers it, so that a contact deleted at
        Autopilot meanwhile is not created again, subscribed, when they return."""
        self._check_batch(emails, self.removal_batch_size)
        failures = []
        unsubscribed = []
        for email in emails:
            try:
                contact = self.client.contact(email)
                if contact is None:
                    continue  # not in the account, so on no list
                if opted_out(contact):
                    unsubscribed.append(email)
                self.client.remove_from_list(list_id, email)
            except ListNotFound:
                raise  # the list itself is gone: the export must stop
            except Permanent as error:
                failures.append(RecordFailure(email, str(error.code or ""), error.message))
        return PushResult(
            accepted=len(emails) - len(failures), failures=failures, opted_out=unsubscribed
        )

    def erase(self, list_id: str, email: str) -> None:
        """``DELETE /contact/{email}``: the contact goes from the account, not only the list."""
        self.client.delete_contact(email)

    @staticmethod
    def _contact(record: Record, list_id: str) -> dict[str, Any]:
        contact: dict[str, Any] = {"Email": record.email, "_autopilot_list": list_id}
        if record.first_name:
            contact["FirstName"] = record.first_name
        if record.last_name:
            contact["LastName"] = record.last_name
        custom = {
            custom_key(name, value): custom_value(value)
            for name, value in record.fields.items()
            if value is not None
        }
        if custom:
            contact["custom"] = custom
        return contact
