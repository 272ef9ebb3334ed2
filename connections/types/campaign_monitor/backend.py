"""Campaign Monitor as an export destination: OAuth 2, imports of up to 1,000 subscribers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.text import shortened
from connections.types.base import (
    DEFAULT_SEND_OPTIONS,
    Backend,
    DestinationField,
    DestinationList,
    ListNotFound,
    Permanent,
    PushResult,
    Record,
    RecordFailure,
    SendOptions,
    StepResult,
    StepSkipped,
    run_steps,
)
from connections.types.campaign_monitor.client import (
    MAX_IMPORT,
    CampaignMonitorClient,
    ci_get,
)
from connections.types.campaign_monitor.forms import CampaignMonitorCredentialsForm

CODE_NOT_IN_LIST = 203
CODE_IS_DELETED = "205"  # an import's FailureDetails code: deleted from the list
#: A subscriber's states that mean the person opted out (or bounced), with the import's code
#: for each: only the person can subscribe again.
OPTED_OUT_STATES = {"unsubscribed": "206", "bounced": "207"}
#: Campaign Monitor keeps at most 250 characters of a name or custom field value (spec §3).
MAX_VALUE_LENGTH = 250


class CampaignMonitorBackend(Backend):
    label = gettext_lazy("Campaign Monitor")
    list_hint = gettext_lazy("Campaign Monitor: lists are shown as “Client / List”.")
    fields_hint = gettext_lazy("Campaign Monitor receives the first and last name joined as Name.")
    icon = "img/connections/campaign_monitor.svg"
    help_template = "connections/campaign_monitor/_help.html"
    batch_size = MAX_IMPORT
    #: A removal is one DELETE per address: batches of 100 keep progress moving.
    removal_batch_size = 100
    #: Campaign Monitor takes up to 1,000,000 profiles per export (product.md, E5).
    max_profiles = 1_000_000
    #: In Suppression List, Is Unsubscribed, Is Bounced (import FailureDetails codes).
    opted_out_codes = frozenset({"204", "206", "207"})
    #: Invalid Email Address. Unconfirmed (208) changes when the person confirms.
    lasting_refusal_codes = frozenset({"1"})
    rate_limit = None  # not published; slow down when the service answers 429
    credentials_form_class = CampaignMonitorCredentialsForm
    oauth = True
    authenticate_label = gettext_lazy("Authenticate with Campaign Monitor")
    #: Unsubscribed people stay unsubscribed: a refused address comes back as a failure (206).
    resubscribe = False

    def __init__(self, store, *, client: CampaignMonitorClient | None = None):
        super().__init__(store)
        self.client = client or CampaignMonitorClient(store)

    @classmethod
    def authorize_url(cls, *, redirect_uri: str, state: str) -> str:
        return CampaignMonitorClient().authorize_url(redirect_uri=redirect_uri, state=state)

    @classmethod
    def exchange_code(cls, *, code: str, redirect_uri: str) -> dict[str, Any]:
        return CampaignMonitorClient().exchange_code(code=code, redirect_uri=redirect_uri)

    def authenticate(self) -> None:
        self.client.clients()

    def test(self) -> list[StepResult]:
        found: dict[str, Any] = {}

        def credentials() -> str:
            found["clients"] = self.client.clients()
            return _("Campaign Monitor accepted this connection's authorization.")

        def lists() -> str:
            found["lists"] = self.list_destinations(clients=found["clients"])
            if not found["lists"]:
                return _(
                    "No lists found. Create a list in Campaign Monitor before adding an export."
                )
            return _("Found %(count)d lists.") % {"count": len(found["lists"])}

        def list_details() -> str:
            if not found["lists"]:
                raise StepSkipped(_("There is no list to read. Create a list in Campaign Monitor."))
            first = found["lists"][0]
            self.client.list_details(first.id)
            fields = self.client.custom_fields(first.id)
            return _("Read the settings and %(count)d custom fields of the list “%(name)s”.") % {
                "count": len(fields),
                "name": first.name,
            }

        return run_steps(
            [
                (_("Credentials accepted"), credentials),
                (_("Lists readable"), lists),
                (_("List settings readable"), list_details),
            ],
            skip_message=_("Skipped: fix the failed step above first."),
        )

    def list_destinations(self, *, clients: list[dict] | None = None) -> list[DestinationList]:
        """Every list of every client the authorization can see, named "Client / List"."""
        destinations = []
        for client in self.client.clients() if clients is None else clients:
            client_name = str(ci_get(client, "Name", ""))
            for item in self.client.lists(str(ci_get(client, "ClientID"))):
                name = str(ci_get(item, "Name", ""))
                destinations.append(
                    DestinationList(
                        id=str(ci_get(item, "ListID")),
                        name=f"{client_name} / {name}" if client_name else name,
                    )
                )
        return destinations

    def prepare(
        self,
        list_id: str,
        fields: Sequence[DestinationField],
        options: SendOptions = DEFAULT_SEND_OPTIONS,
    ) -> None:
        super().prepare(list_id, fields, options)

    def push(self, list_id: str, batch: Sequence[Record]) -> PushResult:
        self._check_batch(batch)
        if not batch:
            return PushResult(accepted=0)
        # Addresses deleted from the list (by a mirror run, or by someone at the service) come
        # back only with Resubscribe, else Code 205. The rest keep Resubscribe off, so that
        # people who unsubscribed stay unsubscribed.
        # Resubscribe also re-activates people who unsubscribed or bounced: each address to be
        # let in again has its state read first, and those are never sent.
        returning = [record for record in batch if record.returning]
        staying = [record for record in batch if not record.returning] if returning else batch
        failures = self._import(list_id, staying, resubscribe=self.resubscribe)
        deleted = {f.email.lower() for f in failures if f.code == CODE_IS_DELETED}
        if deleted:
            failures = [failure for failure in failures if failure.email.lower() not in deleted]
            returning += [record for record in staying if record.email.lower() in deleted]
        opted_out = self._opted_out(list_id, returning)
        failures += opted_out
        refused = {failure.email.lower() for failure in opted_out}
        returning = [record for record in returning if record.email.lower() not in refused]
        failures += self._import(list_id, returning, resubscribe=True)
        return PushResult(accepted=len(batch) - len(failures), failures=failures)

    def _opted_out(self, list_id: str, records: Sequence[Record]) -> list[RecordFailure]:
        """The records whose subscriber is Unsubscribed or Bounced in the list, as refusals."""
        failures = []
        for record in records:
            state = self._state(list_id, record.email)
            if state.lower() in OPTED_OUT_STATES:
                failures.append(
                    RecordFailure(
                        record.email,
                        OPTED_OUT_STATES[state.lower()],
                        _(
                            "Campaign Monitor holds this subscriber as %(state)s: only they can "
                            "subscribe again, so they were not sent."
                        )
                        % {"state": state},
                    )
                )
        return failures

    def _state(self, list_id: str, email: str) -> str:
        """The subscriber's state in the list, or "" when the address is not in it."""
        try:
            return self.client.subscriber_state(list_id, email)
        except ListNotFound:
            raise
        except Permanent as error:
            if error.code != CODE_NOT_IN_LIST:
                raise
            return ""

    def _import(
        self, list_id: str, records: Sequence[Record], *, resubscribe: bool
    ) -> list[RecordFailure]:
        if not records:
            return []
        result = self.client.import_subscribers(
            list_id, [self._subscriber(record) for record in records], resubscribe=resubscribe
        )
        return [
            RecordFailure(email=failure.email, code=failure.code, message=failure.message)
            for failure in result.failures
        ]

    def remove(self, list_id: str, emails: Sequence[str]) -> PushResult:
        """Delete leavers; those who unsubscribed or bounced are listed as opted out first (a
        deleted subscriber reads as Deleted, and Resubscribe would let them in again)."""
        self._check_batch(emails, self.removal_batch_size)
        failures = []
        opted_out = []
        for email in emails:
            try:
                state = self._state(list_id, email)
                if state.lower() in OPTED_OUT_STATES:
                    opted_out.append(email)
                if state and state.lower() != "deleted":
                    self.client.delete_subscriber(list_id, email)
            except ListNotFound:
                raise  # the list itself is gone: the export must stop
            except Permanent as error:
                if error.code != CODE_NOT_IN_LIST:
                    failures.append(RecordFailure(email, str(error.code or ""), error.message))
        return PushResult(
            accepted=len(emails) - len(failures), failures=failures, opted_out=opted_out
        )

    def erase(self, list_id: str, email: str) -> None:
        """``DELETE /subscribers/{listid}.json``: the only deletion the API offers (the
        subscriber becomes Deleted in this list; Campaign Monitor keeps that state)."""
        try:
            self.client.delete_subscriber(list_id, email)
        except ListNotFound:
            raise
        except Permanent as error:
            if error.code != CODE_NOT_IN_LIST:
                raise

    def _subscriber(self, record: Record) -> dict[str, Any]:
        custom_fields = (
            [
                {
                    "Key": name,
                    "Value": "" if value is None else shortened(str(value), MAX_VALUE_LENGTH),
                }
                for name, value in record.fields.items()
            ]
            if record.fields
            else []
        )
        subscriber = {
            "EmailAddress": record.email,
            "ConsentToTrack": "Unchanged",
            "CustomFields": custom_fields,
        }
        # Without names to send, the name already in the list is kept (an empty one would
        # overwrite it, for instance when the export maps no name fields).
        name = f"{record.first_name} {record.last_name}".strip()
        if name:
            subscriber["Name"] = shortened(name, MAX_VALUE_LENGTH).rstrip()
        return subscriber
