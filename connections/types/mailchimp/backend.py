"""Mailchimp as an export destination: OAuth 2 or an API key, batch upserts of 500 members.

An export sends to an audience, or to one tag inside an audience (Mailchimp recommends one
audience organised with tags): its list id is the audience id, or ``<audience id>#<tag>``.
First and last names go to the audience's merge fields for them as the account names them
(``FNAME``/``LNAME``, or fields named First/Last Name); an audience without them gets no names,
and the list picker and the connection test say so.
"""

from __future__ import annotations

import contextlib
import functools
import json
import operator
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.utils.translation import gettext, gettext_lazy

from config.translation import LaterText
from config.translation import gettext_later as _
from connections.types.base import (
    DEFAULT_SEND_OPTIONS,
    INVALID_VALUE,
    Backend,
    ConsentColumns,
    ConsentEvent,
    ConsentPage,
    ConsentState,
    DestinationField,
    DestinationList,
    FieldType,
    ListNotFound,
    Permanent,
    PushResult,
    RateLimited,
    Record,
    RecordFailure,
    RecordWarning,
    SendOptions,
    StepResult,
    StepSkipped,
    Transient,
    run_steps,
)
from connections.types.mailchimp.client import (
    MAX_BATCH,
    MAX_BATCH_OPERATIONS,
    MailchimpClient,
    NotFound,
    NotRemovable,
    OperationResult,
    data_centre_of,
)
from connections.types.mailchimp.forms import MailchimpCredentialsForm
from connections.types.values import (
    as_date,
    as_number,
    as_option,
    as_text,
    builtin_fields,
    convert_record,
    fields_at_service,
    fitted,
    preview_value,
)

TAG_SEPARATOR = "#"
#: Per-record refusals, recognised by Mailchimp's words (the batch sends them as ERROR_GENERIC).
REFUSALS = (
    ("compliance state", "compliance_state"),
    ("permanently deleted", "forgotten"),
    ("looks fake or invalid", "invalid_email"),
    ("signed up to a lot of lists", "too_many_signups"),
)
#: Member statuses that mean the person opted out (or bounced): only they can opt in again.
OPTED_OUT_STATUSES = frozenset({"unsubscribed", "cleaned"})
#: The code of a returning member found unsubscribed before being sent again.
OPTED_OUT_CODE = "unsubscribed"
#: The code of a returning member found cleaned (hard or repeated soft bounces): the consent
#: record the run writes says cleaned, not unsubscribed.
CLEANED_CODE = "cleaned"
#: The code each opted-out member status gives a returning member refused before sending.
OPTED_OUT_CODES_BY_STATUS = {"unsubscribed": OPTED_OUT_CODE, "cleaned": CLEANED_CODE}
#: Statuses a member can be archived from (the others answer 405: nothing to take off).
ARCHIVABLE_STATUSES = frozenset({"subscribed", "unsubscribed", "transactional"})
#: Up to this many leavers are archived call by call (two calls each); more go through two
#: ``/batches`` batches, which cost about six calls whatever their size.
ARCHIVE_ONE_BY_ONE_UP_TO = 2
#: Merge field types as ours (address fields take an object: they are not offered), and back
#: for creating one (§11).
FIELD_TYPES = {
    "text": FieldType.TEXT,
    "number": FieldType.NUMBER,
    "date": FieldType.DATE,
    "birthday": FieldType.DATE,
    "radio": FieldType.SINGLE_SELECT,
    "dropdown": FieldType.SINGLE_SELECT,
    "phone": FieldType.TEXT,
    "url": FieldType.TEXT,
    "imageurl": FieldType.TEXT,
    "zip": FieldType.TEXT,
}
MERGE_TYPES = {
    FieldType.TEXT: "text",
    FieldType.NUMBER: "number",
    FieldType.DATE: "date",
    FieldType.SINGLE_SELECT: "dropdown",
}
#: The longest text merge value Mailchimp keeps (§9).
MAX_TEXT = 255
#: What a person new to the audience becomes: "pending" has Mailchimp ask them to confirm.
NEW_STATUSES = ("subscribed", "pending")
CONTACT_EXISTS = "ERROR_CONTACT_EXISTS"
#: Sent for people already in the audience: subscribed stay so, opted-out ones are refused.
STAYS = "subscribed"
#: What a consent read reads of each audience, in order (mailchimp_api.md §12): members by
#: status, changed since the last read, then every abuse report ("complaints").
CONSENT_STREAMS = ("unsubscribed", "cleaned", "abuse-reports")
CONSENT_STATES = {"unsubscribed": ConsentState.UNSUBSCRIBED, "cleaned": ConsentState.CLEANED}
#: A read starts this long before the last one did: offset pages shift while changes arrive.
CONSENT_OVERLAP = timedelta(hours=1)
#: The longest reason kept (``ConsentEvent.reason``).
MAX_REASON = 200
FIRST_NAMES = ("first name", "firstname", "first")
LAST_NAMES = ("last name", "lastname", "last", "surname")


def split_destination(list_id: str) -> tuple[str, str]:
    """``"a1b2c3#vip"`` → ``("a1b2c3", "vip")``; an audience alone has the tag ""."""
    audience, _separator, tag = list_id.partition(TAG_SEPARATOR)
    return audience.strip(), tag.strip()


def name_tags(merge_fields: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The merge tags that hold first and last names in this audience ("" when it has none)."""

    def find(default_tag: str, names: tuple[str, ...]) -> str:
        tags = {str(item.get("tag") or "").upper(): item for item in merge_fields}
        if default_tag in tags:
            return default_tag
        for item in merge_fields:
            if str(item.get("name") or "").strip().lower() in names:
                return str(item.get("tag") or "")
        return ""

    return find("FNAME", FIRST_NAMES), find("LNAME", LAST_NAMES)


class MailchimpBackend(Backend):
    label = gettext_lazy("Mailchimp")
    icon = "img/connections/mailchimp.svg"
    help_template = "connections/mailchimp/_help.html"
    list_hint = gettext_lazy(
        "Mailchimp: an audience ID, or the audience ID, # and a tag (a1b2c3d4e5#VIP) to keep "
        "this export's people under one tag of the audience, as Mailchimp recommends."
    )
    fields_hint = gettext_lazy(
        "Mailchimp receives the first and last name in the audience's merge fields for them (FNAME "
        "and LNAME, or the fields named First Name and Last Name)."
    )
    batch_size = MAX_BATCH
    #: Archiving goes through ``/batches``: one batch reads up to 500 members' statuses, one
    #: archives those it may (``remove``).
    removal_batch_size = MAX_BATCH_OPERATIONS
    #: Taking a tag off is one call for up to 500 addresses (the tag's static segment).
    tag_removal_batch_size = MAX_BATCH
    #: Mailchimp sets no limit; one run is held to what the product promises (product.md E5).
    max_profiles = 1_000_000
    #: Unsubscribed, cleaned or in compliance review; or permanently deleted ("forgotten").
    opted_out_codes = frozenset({"compliance_state", "forgotten", OPTED_OUT_CODE, CLEANED_CODE})
    #: A returning member found cleaned is recorded as cleaned (the others as unsubscribed).
    opted_out_states = MappingProxyType({CLEANED_CODE: ConsentState.CLEANED})
    #: Fake-looking or invalid addresses, merge values refused or not convertible. "Signed up
    #: to a lot of lists" passes by itself.
    lasting_refusal_codes = frozenset({"invalid_email", INVALID_VALUE})
    rate_limit = None  # no published rate: 10 requests at once per account (``slots``)
    credentials_form_class = MailchimpCredentialsForm
    oauth = True
    authenticate_label = gettext_lazy("Authenticate with Mailchimp")
    supports_tags = True
    creatable_field_types = frozenset(MERGE_TYPES)
    new_subscriber_statuses = NEW_STATUSES
    #: Mailchimp bills by the contacts in each audience (a list is an audience).
    bills_by_contacts = True

    credentials_rejected_message = _("Mailchimp rejected this API key. Check it and try again.")

    def __init__(self, store, *, client: MailchimpClient | None = None):
        super().__init__(store)
        self.client = client or MailchimpClient(store)
        # A batch more would only wait for a slot, asking Redis for one every 20 ms.
        self.max_in_flight = settings.MAILCHIMP_MAX_CONNECTIONS
        self._name_tags: dict[str, tuple[str, str]] = {}
        self._birthdays: set[str] = set()  # merge tags of birthday fields (MM/DD)
        self._pending: dict[str, frozenset[str]] = {}
        self._audiences_known: set[str] = set()
        self._tag_segments: dict[tuple[str, str], int | None] = {}
        # Each audience's tags (lower-cased) and their static segments' ids, read once.
        self._segment_ids: dict[str, dict[str, int]] = {}

    @classmethod
    def verify(cls, credentials: dict[str, Any]) -> None:
        if not data_centre_of(str(credentials.get("api_key") or "")):
            raise Permanent(
                _(
                    "This is not a whole Mailchimp API key: it must end in its data centre, like "
                    "-us21. Copy the key again from Mailchimp."
                )
            )
        super().verify(credentials)

    @classmethod
    def authorize_url(cls, *, redirect_uri: str, state: str) -> str:
        return MailchimpClient().authorize_url(redirect_uri=redirect_uri, state=state)

    @classmethod
    def exchange_code(cls, *, code: str, redirect_uri: str) -> dict[str, Any]:
        return MailchimpClient().exchange_code(code=code, redirect_uri=redirect_uri)

    def authenticate(self) -> None:
        self.client.ping()

    def test(self) -> list[StepResult]:
        found: dict[str, Any] = {}

        def credentials() -> LaterText:
            self.client.ping()
            return _("Mailchimp accepted the credentials.")

        def audiences() -> LaterText:
            found["audiences"] = self.client.audiences()
            if not found["audiences"]:
                return _("No audiences found. Create an audience in Mailchimp first.")
            return _("Found %(count)d audiences.") % {"count": len(found["audiences"])}

        def merge_fields() -> LaterText:
            if not found["audiences"]:
                raise StepSkipped(_("There is no audience to read. Create one in Mailchimp."))
            first = found["audiences"][0]
            name = str(first.get("name") or "")
            missing = self._missing_names(str(first.get("id")))
            if missing:
                return _("The audience “%(name)s” can be read. %(missing)s") % {
                    "name": name,
                    "missing": missing,
                }
            return _("Read the merge fields of the audience “%(name)s”.") % {"name": name}

        return run_steps(
            [
                (_("Credentials accepted"), credentials),
                (_("Audiences readable"), audiences),
                (_("Merge fields readable"), merge_fields),
            ],
            skip_message=_("Skipped: fix the failed step above first."),
        )

    def list_destinations(self) -> list[DestinationList]:
        destinations = []
        for audience in self.client.audiences():
            audience_id = str(audience.get("id"))
            name = str(audience.get("name") or audience_id)
            missing = self._missing_names(audience_id)
            destinations.append(
                DestinationList(id=audience_id, name=f"{name} ({missing})" if missing else name)
            )
        return destinations

    def find_destination(self, list_id: str) -> DestinationList | None:
        audience_id, tag = split_destination(list_id)
        found = next((d for d in self.list_destinations() if d.id == audience_id), None)
        if found is None or not tag:
            return found
        return DestinationList(
            id=list_id,
            # Mailchimp's own notation for a tag, the same in every language.
            name=f"{found.name} #{tag}",
        )

    def list_fields(self, list_id: str) -> list[DestinationField]:
        """The builtins (first and last name are the audience's merge fields for them), then
        every other merge field but addresses."""
        audience_id, _tag = split_destination(list_id)
        try:
            merge_fields = self.client.merge_fields(audience_id)
        except NotFound:
            raise ListNotFound(service="Mailchimp", list_id=audience_id, status=404) from None
        self._name_tags[audience_id] = name_tags(merge_fields)
        names = set(self._name_tags[audience_id]) - {""}
        return builtin_fields(MAX_TEXT) + [
            self._field(item)
            for item in merge_fields
            if str(item.get("tag") or "") not in names and str(item.get("type")) in FIELD_TYPES
        ]

    def create_field(
        self, list_id: str, name: str, type: FieldType, options: Sequence[str] = ()
    ) -> DestinationField:
        if type not in MERGE_TYPES:
            raise Permanent(
                _("Mailchimp cannot create a merge field of the type %(type)s.")
                % {"type": str(type)}
            )
        audience_id, _tag = split_destination(list_id)
        choices = list(options) if type == FieldType.SINGLE_SELECT else []
        try:
            created = self.client.create_merge_field(audience_id, name, MERGE_TYPES[type], choices)
        except NotFound:
            raise ListNotFound(service="Mailchimp", list_id=audience_id, status=404) from None
        return self._field(created)

    def prepare(
        self,
        list_id: str,
        fields: Sequence[DestinationField],
        options: SendOptions = DEFAULT_SEND_OPTIONS,
    ) -> None:
        """Read the audience's merge fields now if Mailchimp answers (otherwise the first
        batch reads them, where a rate limit or a server error is retried), and check that
        every mapped merge field is still there."""
        if options.new_subscriber_status not in NEW_STATUSES:
            raise Permanent(
                _("Mailchimp gives new people the status subscribed or pending, not %(status)s.")
                % {"status": options.new_subscriber_status}
            )
        super().prepare(list_id, fields, options)
        audience_id = split_destination(list_id)[0]
        with contextlib.suppress(RateLimited, Transient):
            listed = self.list_fields(list_id)
            self.fields_by_key = fields_at_service("Mailchimp", audience_id, listed, fields)

    def convert(self, field: DestinationField, value: object) -> tuple[object, str | None]:
        """Text (at most 255 characters; yes/no as "true"/"false", several values joined with
        commas), a number as a JSON number, a date as YYYY-MM-DD (a birthday as MM/DD), one of
        a radio or dropdown field's choices."""
        if field.type == FieldType.NUMBER:
            number = as_number(value)
            return (int(number) if number == number.to_integral_value() else float(number)), None
        if field.type in (FieldType.DATE, FieldType.DATETIME):
            day = as_date(value)
            if field.key in self._birthdays:
                return day.strftime("%m/%d"), None
            return day.isoformat(), None
        if field.type == FieldType.SINGLE_SELECT:
            return as_option(field, value), None
        return fitted(field, as_text(value))

    def preview(self, record: Record) -> list[tuple[str, str]]:
        audience_id, tag = split_destination(self.prepared_list_id)
        member, failure, _warnings = self._member(record, tag, self._name_tags.get(audience_id))
        rows = [(gettext("Email address"), record.email)]
        if failure is not None:
            return [*rows, (gettext("Error"), str(failure.message))]
        names = {item.key: item.name for item in self.fields_by_key.values()}
        first_tag, last_tag = self._name_tags.get(audience_id, ("", ""))
        names.update({first_tag: gettext("First name"), last_tag: gettext("Last name")})
        for key, value in (member.get("merge_fields") or {}).items():
            rows.append(
                (f"{names.get(key, key)} ({key})", preview_value(value if value != "" else None))
            )
        if member.get("tags"):
            rows.append((gettext("Tags added"), ", ".join(member["tags"])))
        if record.removed_tags:
            rows.append((gettext("Tags taken off"), ", ".join(record.removed_tags)))
        rows.append((gettext("Status of new people"), self.send_options.new_subscriber_status))
        return rows

    def push(self, list_id: str, batch: Sequence[Record]) -> PushResult:
        self._check_batch(batch)
        if not batch:
            return PushResult(accepted=0)
        audience_id, tag = split_destination(list_id)
        if all(_only_untags(record) for record in batch):
            # Leavers who lose tags: nothing is written to them but that, in bulk.
            untag_failures = self._untag_members(audience_id, batch)
            return PushResult(accepted=len(batch) - len(untag_failures), failures=untag_failures)
        names = self._tags_for(audience_id)
        opted_out = self._opted_out_returning(audience_id, batch)
        members: dict[str, dict[str, Any]] = {}
        failures: list[RecordFailure] = []
        warnings: list[RecordWarning] = []
        for record in batch:
            address = record.email.lower()
            if address in opted_out:
                failures.append(
                    RecordFailure(
                        record.email,
                        OPTED_OUT_CODES_BY_STATUS[opted_out[address]],
                        _(
                            "Mailchimp holds this member as %(status)s: only they can subscribe "
                            "again, so they were not sent."
                        )
                        % {"status": opted_out[address]},
                    )
                )
                continue
            member, failure, shortened = self._member(record, tag, names)
            if failure is not None:
                failures.append(failure)
                continue
            members[address] = member
            warnings += shortened
        done, refused = self._upsert(audience_id, members)
        untagged: list[Record] = []
        for record in batch:
            address = record.email.lower()
            if address not in members:
                continue
            if address in refused:
                failures.append(self._refusal(record.email, refused[address]))
            elif address not in done:
                failures.append(
                    RecordFailure(
                        record.email,
                        "not_accepted",
                        _("Mailchimp did not report this member as added or updated."),
                    )
                )
            elif record.removed_tags:
                untagged.append(record)
        if untagged:
            failures += self._untag_members(audience_id, untagged)
        failed = {failure.email.lower() for failure in failures}
        return PushResult(
            accepted=len(batch) - len(failures),
            failures=failures,
            warnings=[warning for warning in warnings if warning.email.lower() not in failed],
        )

    def _member(
        self, record: Record, tag: str, names: tuple[str, str] | None
    ) -> tuple[dict[str, Any], RecordFailure | None, list[RecordWarning]]:
        """The record as a batch member, or the failure of a value that cannot be sent."""
        first_tag, last_tag = names or ("", "")
        merge_fields: dict[str, Any] = {}
        if record.first_name and first_tag:
            merge_fields[first_tag] = record.first_name
        if record.last_name and last_tag:
            merge_fields[last_tag] = record.last_name
        warnings: list[RecordWarning] = []
        if record.fields:  # most exports map no other field: nothing to convert, a million times
            converted = convert_record(self, record)
            if converted.failure is not None:
                return {}, converted.failure, []
            for field, value in converted.values:
                merge_fields[field.key] = "" if value is None else value  # "" clears (§9)
            warnings = converted.warnings
        # The status a new person gets; Mailchimp refuses "subscribed" for people who
        # unsubscribed or were cleaned (Member In Compliance State), so they are never
        # subscribed again. ``_upsert`` decides for people already in the audience.
        member: dict[str, Any] = {
            "email_address": record.email,
            "status": self.send_options.new_subscriber_status,
        }
        if merge_fields:
            member["merge_fields"] = merge_fields
        if tag and record.tags:
            member["tags"] = [tag, *(name for name in record.tags if name.lower() != tag.lower())]
        elif tag or record.tags:
            member["tags"] = [tag] if tag else list(record.tags)
        return member, None, warnings

    def _upsert(
        self, audience_id: str, members: dict[str, dict[str, Any]]
    ) -> tuple[set[str], dict[str, Mapping[str, Any]]]:
        """Send the members; returns the addresses added or updated and the refusals.

        With "subscribed" for new people one call does it: an existing member sent as
        subscribed stays so. With "pending" (double opt-in) a first call creates only the new
        people, as pending; those already in the audience are then updated keeping a pending
        member pending and sending the others as subscribed (refused for those who opted out),
        so that nobody confirmed is asked again and nobody unconfirmed is subscribed by us."""
        if not members:
            return set(), {}
        pending = self.send_options.new_subscriber_status == "pending"
        reply = self._batch(audience_id, list(members.values()), update_existing=not pending)
        done = _addresses(reply, "new_members") | _addresses(reply, "updated_members")
        refused = {
            str(error.get("email_address") or "").lower(): error
            for error in reply.get("errors") or []
        }
        existing = [
            a for a, e in refused.items() if pending and e.get("error_code") == CONTACT_EXISTS
        ]
        if existing:
            unconfirmed = self._pending_members(audience_id)
            again = [
                {
                    **members[address],
                    "status": "pending" if address in unconfirmed else "subscribed",
                }
                for address in existing
                if address in members
            ]
            for address in existing:
                refused.pop(address)
            second = self._batch(audience_id, again, update_existing=True)
            done |= _addresses(second, "new_members") | _addresses(second, "updated_members")
            refused.update(
                {
                    str(error.get("email_address") or "").lower(): error
                    for error in second.get("errors") or []
                }
            )
        return done, refused

    def _batch(
        self, audience_id: str, members: list[dict[str, Any]], *, update_existing: bool
    ) -> dict[str, Any]:
        try:
            return self.client.batch_upsert(audience_id, members, update_existing=update_existing)
        except NotFound:  # the batch endpoint is the audience itself: it is gone
            raise ListNotFound(service="Mailchimp", list_id=audience_id, status=404) from None

    def _pending_members(self, audience_id: str) -> frozenset[str]:
        """The audience's members waiting to confirm (read once per run, when needed)."""
        if audience_id not in self._pending:
            self._pending[audience_id] = frozenset(
                email.lower() for email in self.client.members_with_status(audience_id, "pending")
            )
        return self._pending[audience_id]

    def _untag_members(self, audience_id: str, records: Sequence[Record]) -> list[RecordFailure]:
        """Take each record's ``removed_tags`` off its member in bulk: one call per tag and
        500 members, through the tag's static segment (``members_to_remove``, §5), instead
        of one call per member. Addresses not on the audience, and tags the audience does
        not have, have nothing to take off."""
        by_tag: dict[str, list[str]] = {}
        for record in records:
            for name in dict.fromkeys(tag.strip().lower() for tag in record.removed_tags):
                if name:
                    by_tag.setdefault(name, []).append(record.email)
        if not by_tag:
            return []
        segments = self._static_segments(audience_id)
        failures: dict[str, RecordFailure] = {}
        for name, emails in by_tag.items():
            segment_id = segments.get(name)
            if segment_id is None:
                continue
            for start in range(0, len(emails), MAX_BATCH):
                chunk = emails[start : start + MAX_BATCH]
                try:
                    reply = self.client.segment_remove(audience_id, segment_id, chunk)
                except NotFound:
                    self._check_audience(audience_id)
                    break  # the tag went meanwhile: nobody carries it
                for error in reply.get("errors") or []:
                    for email in error.get("email_addresses") or []:
                        if str(error.get("error") or ""):
                            failures.setdefault(
                                str(email).lower(),
                                RecordFailure(str(email), "generic", str(error.get("error"))),
                            )
        return list(failures.values())

    def _static_segments(self, audience_id: str) -> dict[str, int]:
        if audience_id not in self._segment_ids:
            try:
                self._segment_ids[audience_id] = self.client.static_segments(audience_id)
            except NotFound:
                raise ListNotFound(service="Mailchimp", list_id=audience_id, status=404) from None
        return self._segment_ids[audience_id]

    def removal_batch_size_for(self, list_id: str) -> int:
        return (
            self.tag_removal_batch_size
            if split_destination(list_id)[1]
            else super().removal_batch_size_for(list_id)
        )

    def remove(self, list_id: str, emails: Sequence[str]) -> PushResult:
        """Archive leavers (never the permanent delete), or take the export's tag off them.

        Before archiving, the member's status is read: an archived member reads as archived,
        and a member who unsubscribed would be restored as subscribed if sent again. Those who
        unsubscribed or were cleaned are listed as opted out (and archived when Mailchimp
        allows it). With a tag the member stays in the audience with their status, which
        Mailchimp itself then protects (a compliance-state refusal).

        More than ``ARCHIVE_ONE_BY_ONE_UP_TO`` leavers go through ``/batches``: one batch reads
        every status, and one archives those that may be archived, each with its own result."""
        self._check_batch(emails, self.removal_batch_size_for(list_id))
        audience_id, tag = split_destination(list_id)
        if tag:
            return self._untag(audience_id, tag, emails)
        if len(emails) > ARCHIVE_ONE_BY_ONE_UP_TO:
            return self._archive_in_batches(audience_id, emails)
        failures = []
        opted_out = []
        cleaned: dict[str, ConsentState] = {}
        for email in emails:
            try:
                status = self.client.member_status(audience_id, email)
                if status in OPTED_OUT_STATUSES:
                    opted_out.append(email)
                if status == "cleaned":
                    cleaned[email] = ConsentState.CLEANED
                if status in ("subscribed", "unsubscribed", "transactional"):
                    self.client.archive(audience_id, email)
            except NotRemovable:
                continue  # pending, cleaned or already archived: nothing to take off
            except NotFound:
                self._check_audience(audience_id)
                continue  # not on the audience
            except Permanent as error:
                failures.append(RecordFailure(email, str(error.code or ""), error.message))
        return PushResult(
            accepted=len(emails) - len(failures),
            failures=failures,
            opted_out=opted_out,
            opted_out_states=cleaned,
        )

    def erase(self, list_id: str, email: str) -> None:
        """Permanently delete the member from the audience (``delete-permanent``), also for an
        export to one tag of it: the person leaves the audience, not only the tag."""
        audience_id, _tag = split_destination(list_id)
        try:
            self.client.delete_permanent(audience_id, email)
        except NotFound:
            self._check_audience(audience_id)  # not on the audience (or deleted before)

    # Consent read-back (mailchimp_api.md §12) ------------------------------------------------

    reads_consent = True

    def read_consent(
        self, lists: Sequence[str], *, since: datetime | None, cursor: str | None = None
    ) -> ConsentPage:
        """One page (up to 1,000) of who opted out in the audiences of ``lists`` (an export to
        ``<audience>#<tag>`` reads its audience; each audience once, in the order given).

        For each audience: members ``unsubscribed`` (with Mailchimp's ``unsubscribe_reason``
        when it gives one), then ``cleaned`` (hard or repeated soft bounces), changed since
        ``since`` less an hour, oldest change first, dated by their ``last_changed``; then
        every abuse report as a complaint, dated (Mailchimp has no "since" for them, so they
        are read in full each time). Archived members did not opt out and are not read.

        The cursor is compact JSON naming the audience, the stream, the offset and the
        ``since_last_changed`` sent, so a resumed read asks the same question whatever
        ``since`` it is given. An audience Mailchimp no longer has (404) is skipped: nobody
        can be sent there, and the other audiences must still be read."""
        audiences = list(
            dict.fromkeys(
                audience for audience in (split_destination(item)[0] for item in lists) if audience
            )
        )
        if len(audiences) > self.max_consent_lists:
            raise ValueError(
                f"A consent read covers at most {self.max_consent_lists} lists, "
                f"not {len(audiences)}."
            )
        if cursor is None:
            index, stream, offset, since_sent = 0, 0, 0, _since_parameter(since)
        else:
            index, stream, offset, since_sent = _parse_consent_cursor(cursor, audiences)
        while index < len(audiences):
            audience = audiences[index]
            events: Sequence[ConsentEvent]
            try:
                if CONSENT_STREAMS[stream] == "abuse-reports":
                    items, total = self.client.abuse_reports_page(audience, offset=offset)
                    complaints = (_complaint(audience, item) for item in items)
                    events = [event for event in complaints if event is not None]
                else:
                    items, total = self.client.opted_out_page(
                        audience, CONSENT_STREAMS[stream], since=since_sent, offset=offset
                    )
                    events = _opt_out_page(audience, CONSENT_STREAMS[stream], items)
            except NotFound:
                index, stream, offset = index + 1, 0, 0  # the audience is gone: the next one
                continue
            offset += len(items)
            if not items or offset >= total:
                stream, offset = stream + 1, 0
                if stream == len(CONSENT_STREAMS):
                    index, stream = index + 1, 0
            if index >= len(audiences):
                return ConsentPage(events, None)
            position: dict[str, object] = {
                "list": audiences[index],
                "stream": CONSENT_STREAMS[stream],
                "offset": offset,
                "since": since_sent,
            }
            return ConsentPage(events, _compact(position))
        return ConsentPage([], None)

    # Helpers -------------------------------------------------------------------------------

    def _archive_in_batches(self, audience_id: str, emails: Sequence[str]) -> PushResult:
        """``remove`` for many leavers: their statuses read in one batch, the archivable ones
        archived in a second. An address not on the audience (404) counts as removed."""
        failures: list[RecordFailure] = []
        opted_out: list[str] = []
        cleaned: dict[str, ConsentState] = {}
        archivable: list[str] = []
        statuses = self.client.member_statuses(audience_id, emails)
        if any(result.status_code == 404 for result in statuses.values()):
            self._check_audience(audience_id)  # not on the audience, if the audience is there
        for email in emails:
            result = statuses.get(email)
            if result is None or (result.status_code >= 400 and result.status_code != 404):
                failures.append(self._operation_failure(email, result))
                continue
            if result.status_code == 404:
                continue
            status = str((result.body or {}).get("status") or "")
            if status in OPTED_OUT_STATUSES:
                opted_out.append(email)
            if status == "cleaned":
                cleaned[email] = ConsentState.CLEANED
            if status in ARCHIVABLE_STATUSES:
                archivable.append(email)
        if archivable:
            archived = self.client.archive_many(audience_id, archivable)
            for email in archivable:
                result = archived.get(email)
                # 405: pending, cleaned or archived meanwhile; 404: gone meanwhile.
                if result is None or (
                    result.status_code >= 400 and result.status_code not in (404, 405)
                ):
                    failures.append(self._operation_failure(email, result))
        return PushResult(
            accepted=len(emails) - len(failures),
            failures=failures,
            opted_out=opted_out,
            opted_out_states=cleaned,
        )

    @staticmethod
    def _operation_failure(email: str, result: OperationResult | None) -> RecordFailure:
        if result is None:
            return RecordFailure(
                email, "not_reported", _("Mailchimp's batch results did not mention this member.")
            )
        return RecordFailure(
            email,
            result.title or str(result.status_code),
            _("Mailchimp refused the request: %(detail)s") % {"detail": result.detail},
        )

    def _untag(self, audience_id: str, tag: str, emails: Sequence[str]) -> PushResult:
        """Take the tag off up to 500 members in one call, through its static segment. An
        audience with no such tag has nobody to take it off."""
        key = (audience_id, tag.lower())
        if key not in self._tag_segments:
            try:
                self._tag_segments[key] = self.client.tag_segment_id(audience_id, tag)
            except NotFound:
                raise ListNotFound(service="Mailchimp", list_id=audience_id, status=404) from None
        segment_id = self._tag_segments[key]
        if segment_id is None or not emails:
            return PushResult(accepted=len(emails))
        try:
            reply = self.client.segment_remove(audience_id, segment_id, emails)
        except NotFound:
            self._check_audience(audience_id)
            self._tag_segments.pop(key, None)  # the tag went meanwhile: nobody carries it
            return PushResult(accepted=len(emails))
        failures = [
            RecordFailure(email, "generic", str(error.get("error") or ""))
            for error in reply.get("errors") or []
            for email in error.get("email_addresses") or []
            if str(error.get("error") or "")
        ]
        return PushResult(accepted=len(emails) - len(failures), failures=failures)

    def _opted_out_returning(self, audience_id: str, batch: Sequence[Record]) -> dict[str, str]:
        """The returning records (an earlier mirror run removed them) whose member Mailchimp
        holds as unsubscribed or cleaned, by address, with that status: read before they are
        sent again, so that nobody who opted out is subscribed by us."""
        found = {}
        for record in batch:
            if not record.returning:
                continue
            try:
                status = self.client.member_status(audience_id, record.email)
            except NotFound:
                continue  # not on the audience (the batch says if it is gone)
            if status in OPTED_OUT_STATUSES:
                found[record.email.lower()] = status
        return found

    def _tags_for(self, audience_id: str) -> tuple[str, str]:
        if audience_id not in self._name_tags:
            merge_fields = self.client.merge_fields(audience_id)
            self._name_tags[audience_id] = name_tags(merge_fields)
            for item in merge_fields:
                if item.get("type") == "birthday":
                    self._birthdays.add(str(item.get("tag") or ""))
        return self._name_tags[audience_id]

    def _field(self, item: Mapping[str, Any]) -> DestinationField:
        tag = str(item.get("tag") or "")
        kind = str(item.get("type") or "text")
        if kind == "birthday":
            self._birthdays.add(tag)
        field_type = FIELD_TYPES.get(kind, FieldType.TEXT)
        choices = (item.get("options") or {}).get("choices") or ()
        return DestinationField(
            key=tag,
            name=str(item.get("name") or tag),
            type=field_type,
            max_length=MAX_TEXT if field_type == FieldType.TEXT else None,
            options=tuple(str(choice) for choice in choices),
        )

    def _missing_names(self, audience_id: str) -> LaterText | str:
        """What the audience lacks to take names, in words; "" when it has both merge fields."""
        first_tag, last_tag = self._tags_for(audience_id)
        if not first_tag and not last_tag:
            return _("no FNAME or LNAME merge field: names are not sent")
        if not first_tag:
            return _("no FNAME merge field: first names are not sent")
        if not last_tag:
            return _("no LNAME merge field: last names are not sent")
        return ""

    def _check_audience(self, audience_id: str) -> None:
        """A 404 on a member is "not there" only if the audience itself exists."""
        if audience_id in self._audiences_known:
            return
        try:
            self.client.audience(audience_id)
        except NotFound:
            raise ListNotFound(service="Mailchimp", list_id=audience_id, status=404) from None
        self._audiences_known.add(audience_id)

    @staticmethod
    def _refusal(email: str, error: Mapping[str, Any]) -> RecordFailure:
        text = str(error.get("error") or "")
        lowered = text.lower()
        code = next((code for words, code in REFUSALS if words in lowered), "")
        if str(error.get("field") or "").startswith("merge_fields"):
            code = INVALID_VALUE  # a merge value Mailchimp does not take
        if not code:
            code = str(error.get("error_code") or "generic").lower().removeprefix("error_")
        return RecordFailure(email, code, text or _("Mailchimp refused this member."))


def _only_untags(record: Record) -> bool:
    """Whether the record only takes tags off its member (a leaver of a mirror export)."""
    return bool(
        record.removed_tags
        and not (record.tags or record.fields or record.first_name or record.last_name)
    )


def _addresses(reply: Mapping[str, Any], key: str) -> set[str]:
    return {str(member.get("email_address") or "").lower() for member in reply.get(key) or []}


def _since_parameter(since: datetime | None) -> str | None:
    """``since`` less the overlap, in UTC written with ``+00:00``: Mailchimp ignores the offset
    of ``since_last_changed`` and reads the time as UTC (§12)."""
    if since is None:
        return None
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return (since - CONSENT_OVERLAP).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _parse_consent_cursor(cursor: str, audiences: list[str]) -> tuple[int, int, int, str | None]:
    """A cursor of ``read_consent`` as (audience index, stream index, offset, since sent). A
    cursor naming an audience no longer read starts again at the first one."""
    try:
        position = json.loads(cursor)
        stream = CONSENT_STREAMS.index(position["stream"])
        offset = int(position["offset"])
        since = position["since"]
        audience = str(position["list"])
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError("This is not a cursor of a Mailchimp consent read.") from error
    if (since is not None and not isinstance(since, str)) or offset < 0:
        raise ValueError("This is not a cursor of a Mailchimp consent read.")
    if audience not in audiences:
        return 0, 0, 0, since
    return audiences.index(audience), stream, offset, since


def _when(value: object) -> datetime | None:
    """A Mailchimp time (ISO 8601), timezone-aware; None when there is none to read."""
    if not isinstance(value, str) or not value:
        return None
    return _parsed_time(value)


@functools.lru_cache(maxsize=4096)
def _when_text(value: str | None) -> datetime | None:
    """``_when`` of a value that is text or None, kept: members changed in one import share
    their time."""
    return _when(value)


@functools.lru_cache(maxsize=4096)
def _parsed_time(value: str) -> datetime | None:
    """Members changed in one import share their time: each is read once."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_EMAIL = operator.methodcaller("get", "email_address")
_STATUS = operator.methodcaller("get", "status")
_LAST_CHANGED = operator.methodcaller("get", "last_changed")
_REASON = operator.methodcaller("get", "unsubscribe_reason")


def _opt_out_page(
    audience: str, stream: str, members: Sequence[Mapping[str, Any]]
) -> Sequence[ConsentEvent]:
    """A page of members of one status as its events' columns (``ConsentColumns``), read
    column by column; a page where some member has no address or another status is read
    member by member (``_opt_outs``)."""
    try:
        statuses = set(map(_STATUS, members))
    except TypeError:  # a status that is not text: the member is left out, as one by one
        return _opt_outs(audience, stream, members)
    emails = list(map(_EMAIL, members))
    if not statuses <= {stream, None, ""} or set(map(type, emails)) - {str}:
        return _opt_outs(audience, stream, members)
    emails = list(map(str.strip, emails))
    if not all(emails):
        return _opt_outs(audience, stream, members)
    changed = list(map(_LAST_CHANGED, members))
    if set(map(type, changed)) - {str, type(None)}:
        return _opt_outs(audience, stream, members)
    reasons = None
    if stream == "unsubscribed":
        reasons = list(map(_REASON, members))
        if set(map(type, reasons)) - {str} or max(map(len, reasons), default=0) > MAX_REASON:
            reasons = [str(reason or "")[:MAX_REASON] for reason in reasons]
    return ConsentColumns(
        emails, CONSENT_STATES[stream], list(map(_when_text, changed)), audience, reasons
    )


def _opt_outs(
    audience: str, stream: str, members: Sequence[Mapping[str, Any]]
) -> list[ConsentEvent]:
    """A page of members as events; a member without an address, or not opted out (the
    filter would not give one), is left out. One loop for the page: a read-back makes
    100,000 of them."""
    found: list[ConsentEvent] = []
    for member in members:
        email = member.get("email_address")
        email = email.strip() if isinstance(email, str) else ""
        status = member.get("status") or stream
        state = CONSENT_STATES.get(status) if isinstance(status, str) else None
        if not email or state is None:
            continue
        reason = (member.get("unsubscribe_reason") or "") if status == "unsubscribed" else ""
        found.append(
            ConsentEvent(
                email,
                state,
                _when(member.get("last_changed")),
                audience,
                reason[:MAX_REASON] if isinstance(reason, str) else str(reason)[:MAX_REASON],
            )
        )
    return found


def _complaint(audience: str, report: Mapping[str, Any]) -> ConsentEvent | None:
    email = str(report.get("email_address") or "").strip()
    if not email:
        return None
    return ConsentEvent(email, ConsentState.COMPLAINED, _when(report.get("date")), audience)


def _compact(position: Mapping[str, object]) -> str:
    """A cursor: JSON without spaces, other alphabets kept (the cursor's limit is characters)."""
    return json.dumps(position, separators=(",", ":"), ensure_ascii=False)
