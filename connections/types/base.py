"""The small interface between Audience Relay and a destination (an email-marketing service).

The export engine talks only to ``Backend``: it never branches on the destination type. A backend
is built for one connection by ``connections.services.backend_for(connection)`` and reads and
replaces that connection's secrets only through a ``CredentialStore``.

Errors are typed so that a caller knows what to do without reading messages:

* ``RateLimited``  - wait ``wait`` seconds, then send the same batch again;
* ``Transient``    - the service could not be reached or failed; retry later with backoff;
* ``Permanent``    - the request itself is wrong (over a limit); retrying won't help;
* ``ListNotFound`` - a ``Permanent`` error: the export's list is not (or no longer) at the service;
* ``AuthExpired``  - the credentials expired and could not be refreshed right now; retry later;
* ``AuthRevoked``  - the credentials are no longer accepted; the connection has already been
  marked "needs re-authentication" and an administrator must authenticate again.

Every message is written for a person and never contains a secret.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from config.translation import gettext_later as _

# Re-exported: each family's kinds and callers take them from their own base.
from core.consent import ConsentState as ConsentState
from core.steps import StepResult as StepResult
from core.steps import StepSkipped as StepSkipped
from core.steps import StepStatus as StepStatus
from core.steps import run_steps as steps_run

if TYPE_CHECKING:
    from django import forms
    from django.utils.functional import Promise

    from config.translation import LaterText

    #: A message a person reads: translated now, or stored and translated when shown.
    Message = LaterText | str


# Errors ------------------------------------------------------------------------------------------


class BackendError(Exception):
    """A destination call failed. ``message`` is safe to show and to store (no secrets); made
    with ``gettext_later``, it is shown in each reader's language (``config.translation``)."""

    permanent: ClassVar[bool] = False

    def __init__(
        self,
        message: LaterText | str,
        *,
        code: str | int | None = None,
        status: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return str(self.message)


class RateLimited(BackendError):
    """The service asked us to slow down. ``wait`` is in seconds; ``hinted`` says whether the
    service named the wait (a header) or it is our default, to be grown with backoff."""

    def __init__(
        self, message: LaterText | str, *, wait: float, hinted: bool = False, **kwargs: Any
    ):
        super().__init__(message, **kwargs)
        self.wait = wait
        self.hinted = hinted


class Transient(BackendError):
    """Timeout, dropped connection or server error: the same call may succeed later. ``wait``
    is how many seconds the service asked us to wait first (``Retry-After``), when it said."""

    def __init__(self, message: LaterText | str, *, wait: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.wait = wait


class Permanent(BackendError):
    """The service refused the request itself: the same call will fail again."""

    permanent = True


class ListNotFound(Permanent):
    """The service has no list with this id (deleted there after the export was saved, or
    never in this account). The connection is fine; the export must choose another list."""

    def __init__(self, *, service: str, list_id: str, **kwargs: Any):
        super().__init__(
            _(
                "%(service)s has no list with the ID %(list)s: it may have been deleted there. "
                "Edit the export and choose another list."
            )
            % {"service": service, "list": list_id},
            **kwargs,
        )
        self.list_id = list_id


class FieldsNotFound(Permanent):
    """Fields the export maps to are no longer in the list at the service (deleted there).
    The connection is fine; the export's field mapping must change (or the fields come back)."""


class AuthError(BackendError):
    """Base of the two authentication errors."""


class AuthExpired(AuthError):
    """The access token expired and one refresh and retry did not help; try again later."""


class AuthRevoked(AuthError):
    """The credentials were rejected or revoked: an administrator must authenticate again."""

    permanent = True


# Values exchanged with the engine and the pages -------------------------------------------------


NO_FIELDS: Mapping[str, object] = MappingProxyType({})


class FieldType(enum.StrEnum):
    """The kind of value a destination field holds; each backend maps its service's own types
    onto these and converts a profile's value to the service's format (``Backend.convert``)."""

    TEXT = "text"
    NUMBER = "number"  # an integer or a decimal
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    SINGLE_SELECT = "single_select"  # one of ``options``
    MULTI_SELECT = "multi_select"  # several of ``options``
    COUNTRY = "country"


#: The keys of the fields every service has (``DestinationField.builtin``).
EMAIL_KEY = "email"
FIRST_NAME_KEY = "first_name"
LAST_NAME_KEY = "last_name"
BUILTIN_KEYS = frozenset({EMAIL_KEY, FIRST_NAME_KEY, LAST_NAME_KEY})


@dataclass(frozen=True)
class DestinationField:
    """A field of a list at the service.

    ``key`` is what the backend writes with: Campaign Monitor "[plan]", Mailchimp "PLAN" (the
    merge tag), Ortto "str:cm:plan", Autopilot "string--Plan". The service's built-in fields
    (``builtin``: always present) use the keys "email", "first_name" and "last_name".
    ``max_length`` is the longest text the service keeps (longer values are shortened, with a
    warning); ``options`` are the choices of a select field, in the service's order.
    """

    key: str
    name: str
    type: FieldType
    max_length: int | None = None
    options: tuple[str, ...] = ()
    builtin: bool = False


@dataclass(frozen=True)
class SendOptions:
    """Per-export choices a backend needs for a run (given to ``prepare``).

    ``new_subscriber_status`` is the status a person new to the list gets, one of the backend's
    ``new_subscriber_statuses`` (Mailchimp "subscribed", or "pending" for double opt-in: the
    service sends the confirmation). ``consent_to_track`` is the consent (Campaign Monitor
    ConsentToTrack, Ortto email permission) given to NEW people whose record carries none;
    None follows the service's rule (Campaign Monitor: "No" for new people; Ortto: no
    permission for new people). Existing people's consent is never changed.
    """

    new_subscriber_status: str = "subscribed"
    consent_to_track: bool | None = None


DEFAULT_SEND_OPTIONS = SendOptions()


class Record(NamedTuple):
    """One profile to send.

    ``fields`` maps a ``DestinationField.key`` to the profile's raw typed value (str, int,
    float, Decimal, date, datetime, bool, list of str); the backend converts it (``convert``)
    for the fields given to ``prepare``. A value of None clears the field at the service; a key
    that is absent leaves the service's value alone. ``tags`` are added and ``removed_tags``
    taken off (types with ``supports_tags``). ``consent`` is this person's consent when new to
    the list (None: ``SendOptions.consent_to_track``).

    ``returning`` marks an address that an earlier mirror run removed from this list and that
    is back in the segments: a service that keeps removed addresses apart must let it in again.
    ``new_to_list`` marks an address the export never sent to this list (it has no sync state
    there): a service that cannot set a value "only if new" (Campaign Monitor's ConsentToTrack)
    sends ``consent`` for these and leaves everyone else's as it is, without asking the service
    who is new. A tuple, because a run makes a million of them.
    """

    email: str
    first_name: str = ""
    last_name: str = ""
    fields: Mapping[str, object] = NO_FIELDS
    returning: bool = False
    tags: tuple[str, ...] = ()
    removed_tags: tuple[str, ...] = ()
    consent: bool | None = None
    new_to_list: bool = False


@dataclass(frozen=True)
class RecordWarning:
    """A record the destination accepted with a value changed on the way (``code``
    "value_shortened": a text longer than the service keeps). Counted as a warning on it."""

    email: str
    code: str
    message: LaterText | str


#: ``RecordWarning.code`` of a value sent shortened to the field's ``max_length``.
VALUE_SHORTENED = "value_shortened"
#: ``RecordFailure.code`` of a value the service cannot take (``convert`` raised ValueError).
INVALID_VALUE = "invalid_value"


@dataclass(frozen=True)
class RecordFailure:
    """A record that the destination refused, with the destination's code and reason (the
    service's own words, or ours made with ``gettext_later``)."""

    email: str
    code: str
    message: LaterText | str


@dataclass
class PushResult:
    """What happened to one batch: how many records the destination accepted, and which failed.

    ``opted_out`` names the accepted addresses (a removal that went through) whose person the
    service holds as opted out (unsubscribed, cleaned): the export remembers them and never
    sends them again, whatever path the address takes afterwards. A refused record that opted
    out is a failure with one of the backend's ``opted_out_codes`` instead. ``warnings`` name
    accepted records sent with a value changed (shortened). ``opted_out_states`` says, for
    addresses in ``opted_out``, what the service holds the person as when it is more than
    unsubscribed (bounced, cleaned): the consent record the run writes says so.
    """

    accepted: int
    failures: list[RecordFailure] = field(default_factory=list)
    opted_out: list[str] = field(default_factory=list)
    opted_out_states: dict[str, ConsentState] = field(default_factory=dict)
    warnings: list[RecordWarning] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)


class ConsentEvent(NamedTuple):
    """One person's opt-out or delivery failure, as the service reported it. A named tuple, not
    a dataclass: a read-back makes 100,000 of them, and a tuple is built ten times faster."""

    #: As the service spelled it; the caller normalises (trims, lower-cases).
    email: str
    state: ConsentState
    #: When it happened by the service's clock, timezone-aware; None when the service says not.
    occurred_at: datetime | None = None
    #: The list it happened in; "" when it holds for the whole account (a suppression list).
    list_id: str = ""
    #: The service's own words (an unsubscribe reason, a bounce message), at most 200 characters.
    reason: str = ""


class ConsentColumns(Sequence[ConsentEvent]):
    """A page's events column by column, all of one state in one list: what a backend that
    reads many people of one status at once gives (Mailchimp's unsubscribed members). It is a
    sequence of ``ConsentEvent`` for whoever reads it so, and the store reads its columns:
    making an event per person cost more than reading the pages (README, "What the
    measurements decided")."""

    def __init__(
        self,
        emails: Sequence[str],
        state: ConsentState,
        occurred_at: Sequence[datetime | None],
        list_id: str = "",
        reasons: Sequence[str] | None = None,
    ):
        if len(occurred_at) != len(emails) or (reasons is not None and len(reasons) != len(emails)):
            raise ValueError("The columns of a consent page differ in length.")
        #: As the service spelled them (each a non-empty str); the caller normalises.
        self.emails = emails
        self.state = state
        self.occurred_at = occurred_at
        self.list_id = list_id
        #: The service's own words, each at most 200 characters; None: none given.
        self.reasons = reasons

    def __len__(self) -> int:
        return len(self.emails)

    def __eq__(self, other: object) -> bool:
        """Equal to a sequence of the same events, as a list of them would be."""
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(other) == len(self) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ConsentColumns({list(self)!r})"

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        return ConsentEvent(
            self.emails[index],
            self.state,
            self.occurred_at[index],
            self.list_id,
            self.reasons[index] if self.reasons is not None else "",
        )


@dataclass(frozen=True)
class ConsentPage:
    """One page of a consent read-back (``Backend.read_consent``)."""

    events: Sequence[ConsentEvent]
    #: Pass back as ``cursor`` to read the next page; None when the read is complete. Opaque to
    #: the caller, at most 1,000 characters, and still valid after a restart (the caller stores
    #: it with the events of its page, so a read that dies resumes from its last page).
    cursor: str | None = None


@dataclass(frozen=True)
class DestinationList:
    """A list (audience) in the destination that an export can send to."""

    id: str
    name: str


# The connection's secrets, as the backend sees them ----------------------------------------------


class CredentialStore(Protocol):
    """Where a backend reads its secrets and, under a lock, replaces them."""

    def load(self) -> dict[str, Any]:
        """The current secrets; waits while an ``update`` of them runs (a token refresh), so
        that a caller never picks up the secrets being replaced."""

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
        """Call ``change(current)`` while holding the connection's lock. If it returns a mapping,
        that becomes the stored secrets. Returns the secrets as stored afterwards."""

    def auth_failed(self, message: Message) -> None:
        """The credentials were revoked or rejected: record it on the connection."""


class MemoryCredentialStore:
    """A store that keeps the secrets in memory: for checking credentials before a connection
    exists, and for tests. As the database's store, ``load`` waits while ``update`` runs."""

    def __init__(self, credentials: dict[str, Any] | None = None):
        self.credentials = dict(credentials or {})
        self.auth_failures: list[Message] = []
        self._lock = threading.Lock()

    def load(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.credentials)

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
        with self._lock:
            changed = change(dict(self.credentials))
            if changed is not None:
                self.credentials = dict(changed)
            return dict(self.credentials)

    def auth_failed(self, message: Message) -> None:
        self.auth_failures.append(message)


# The backend -------------------------------------------------------------------------------------


class Backend:
    """One destination type. Subclasses live in ``connections/types/<kind>/backend.py`` and are
    named in ``connections.types.registry.TYPES``.

    Class attributes describe the type; instance methods work on one connection's credentials.
    """

    #: Templates may show a backend class's label and icon; they must not instantiate it.
    do_not_call_in_templates: ClassVar[bool] = True

    #: Shown on the type's button and next to its connections.
    label: ClassVar[str | Promise] = ""
    #: Static path of a small SVG icon.
    icon: ClassVar[str] = "img/connections/generic.svg"
    #: A template included on the setup pages (where to find a key, what happens next), or "".
    help_template: ClassVar[str] = ""
    #: One line on the export form about the list id of this type (how to pick or name one).
    list_hint: ClassVar[str | Promise] = ""
    #: One line on the export form about where the mapped fields go in the service.
    fields_hint: ClassVar[str | Promise] = ""
    #: The most records ``push`` accepts in one call.
    batch_size: ClassVar[int] = 100
    #: The most addresses one ``remove`` call takes. The engine takes one token of
    #: ``rate_limit`` per call, so a type whose ``remove`` makes one request per address and
    #: that has a published rate limit takes 1.
    removal_batch_size: ClassVar[int] = 100
    #: Requests per second the service allows per credential, or None when it publishes none
    #: (then slow down only when ``RateLimited`` is raised).
    rate_limit: ClassVar[float | None] = None
    #: The most requests the service takes at once per credential, or None when it publishes
    #: no such limit (then ``EXPORT_CONCURRENCY`` bounds a run's batches in flight).
    max_in_flight: int | None = None
    #: The most profiles one export may send, or None when the service sets no limit.
    max_profiles: ClassVar[int | None] = None
    #: Per-record failure codes that mean the person opted out at the service (unsubscribed,
    #: bounced, suppressed): recorded as such and not sent again on every run.
    opted_out_codes: ClassVar[frozenset[str]] = frozenset()
    #: What those codes stand for, where it is more than an unsubscription (a bounce, the
    #: suppression list): the consent record a run writes for the person says so.
    opted_out_states: ClassVar[Mapping[str, ConsentState]] = MappingProxyType({})
    #: Per-record failure codes for refusals that will not change by themselves: the service
    #: refuses the data (an invalid or fake-looking address, a value it does not take), not the
    #: moment. The record is not sent again until its fields change or someone selects
    #: **Retry failed records**. Codes for passing conditions (too many sign-ups lately, an
    #: unconfirmed subscriber, an answer we do not know) stay out: they are sent every run.
    lasting_refusal_codes: ClassVar[frozenset[str]] = frozenset()
    #: The type's secret fields (a ``CredentialsForm`` subclass).
    credentials_form_class: ClassVar[type[forms.Form]]
    #: True when credentials come from an OAuth redirect instead of the form.
    oauth: ClassVar[bool] = False
    #: The label of the button that starts the OAuth redirect.
    authenticate_label: ClassVar[str | Promise] = ""
    #: True when an export may create its list from our form (``create_destination``).
    creates_lists: ClassVar[bool] = False
    #: True when the service has tags: ``Record.tags`` are added and ``removed_tags`` removed.
    supports_tags: ClassVar[bool] = False
    #: The field types ``create_field`` can create; empty when fields cannot be created here.
    creatable_field_types: ClassVar[frozenset[FieldType]] = frozenset()
    #: The statuses a person new to the list may get (``SendOptions.new_subscriber_status``);
    #: empty when the service has no choice.
    new_subscriber_statuses: ClassVar[tuple[str, ...]] = ()
    #: The name of the consent the service keeps for new people ("Consent to track"), or ""
    #: when it keeps none that an export sets.
    consent_field_label: ClassVar[str | Promise] = ""
    #: True when the service bills by the contacts a list (an audience) holds: Preview and the
    #: pre-flight guard then say so beside the list's size now and after the run.
    bills_by_contacts: ClassVar[bool] = False

    def __init__(self, store: CredentialStore):
        self.store = store
        #: The list, mapped fields and choices of the run, given to ``prepare``.
        self.prepared_list_id = ""
        self.fields_by_key: dict[str, DestinationField] = {}
        self.send_options = SendOptions()

    # Setting up (class level: no connection exists yet) ------------------------------------------

    #: What to tell the person who typed credentials the service refused (``verify``); None
    #: leaves the service's own refusal as it is.
    credentials_rejected_message: ClassVar[Any] = None

    @classmethod
    def verify(cls, credentials: dict[str, Any]) -> None:
        """Check typed-in credentials against the service; raise ``BackendError`` with a message
        for the person who typed them. OAuth types need nothing here."""
        try:
            cls(MemoryCredentialStore(credentials)).authenticate()
        except AuthRevoked as error:
            if cls.credentials_rejected_message is None:
                raise
            raise AuthRevoked(
                cls.credentials_rejected_message, code=error.code, status=error.status
            ) from None

    @classmethod
    def authorize_url(cls, *, redirect_uri: str, state: str) -> str:
        """OAuth types: where to send the browser to grant access."""
        raise NotImplementedError

    @classmethod
    def exchange_code(cls, *, code: str, redirect_uri: str) -> dict[str, Any]:
        """OAuth types: turn the callback's code into the credentials to store."""
        raise NotImplementedError

    # Using a connection --------------------------------------------------------------------------

    def authenticate(self) -> None:
        """Make one cheap authenticated call (refreshing tokens when needed); raise on failure."""
        raise NotImplementedError

    def test(self) -> list[StepResult]:
        """Run the connection test: named steps, each passed, failed or skipped."""
        raise NotImplementedError

    def list_destinations(self) -> list[DestinationList]:
        """The lists an export can send to."""
        raise NotImplementedError

    def find_destination(self, list_id: str) -> DestinationList | None:
        """The list an export's list id names, or None when the account has no such list."""
        return next((item for item in self.list_destinations() if item.id == list_id), None)

    def create_destination(self, name: str) -> DestinationList:
        """The list with this name, created when the account has none (``creates_lists``)."""
        raise NotImplementedError

    def list_fields(self, list_id: str) -> list[DestinationField]:
        """The list's fields: the builtins (email, first name, last name, with the keys
        "email", "first_name", "last_name") first, then the custom fields with their types."""
        raise NotImplementedError

    def create_field(
        self, list_id: str, name: str, type: FieldType, options: Sequence[str] = ()
    ) -> DestinationField:
        """Create a custom field named ``name`` (``type`` one of ``creatable_field_types``,
        ``options`` the choices of a select field); returns it with the key the service gave
        it. Raises ``Permanent`` with a clear message when the service refuses (its limit of
        fields, a name taken)."""
        raise NotImplementedError

    def prepare(
        self,
        list_id: str,
        fields: Sequence[DestinationField],
        options: SendOptions = DEFAULT_SEND_OPTIONS,
    ) -> None:
        """Call once per run before the first ``push``, with the fields the export maps to.

        A backend checks that every mapped custom field still exists at the service, raising
        ``Permanent`` naming the missing field(s) so that the run fails at once with nothing
        half-sent, and remembers the fields' types and ``options`` for the pushes. This base
        version only remembers them."""
        self.prepared_list_id = list_id
        self.fields_by_key = {item.key: item for item in fields}
        self.send_options = options

    def consent_for(self, record: Record) -> bool | None:
        """The consent to give ``record``'s person if new to the list: the record's own, else
        the export's (``SendOptions.consent_to_track``); None leaves it to the service."""
        return record.consent if record.consent is not None else self.send_options.consent_to_track

    def convert(self, field: DestinationField, value: object) -> tuple[object, str | None]:
        """The value as this service takes it on the wire for ``field`` (pure, no I/O), and
        ``VALUE_SHORTENED`` when it had to be shortened (else None). Raises ``ValueError``
        with a message for a person when it cannot be converted ("abc" to a number); ``push``
        turns that into a per-record failure with the code ``INVALID_VALUE``."""
        raise NotImplementedError

    def preview(self, record: Record) -> list[tuple[str, str]]:
        """For Preview, after ``prepare``: (destination field name, the value as the service
        will receive it, as text), including the address, names, tags, status and consent."""
        raise NotImplementedError

    def push(self, list_id: str, batch: Sequence[Record]) -> PushResult:
        """Add or update up to ``batch_size`` records in the list.

        Returns which records were accepted and which failed (with the destination's reason).
        A failure of the whole batch raises one of the errors above instead.
        """
        raise NotImplementedError

    def removal_batch_size_for(self, list_id: str) -> int:
        """The most addresses one ``remove`` call takes for this list: ``removal_batch_size``,
        unless the service has a bulk form for some kinds of list only."""
        return self.removal_batch_size

    def remove(self, list_id: str, emails: Sequence[str]) -> PushResult:
        """Take these addresses off the list (at most ``removal_batch_size_for(list_id)``).

        Addresses that are not on the list count as removed. Where the service keeps a
        person's subscription status, it is read before removing: those who unsubscribed or
        were cleaned there are listed in the result's ``opted_out``, so that a later return to
        the segments never subscribes them again (a removal may hide that status: a Mailchimp
        archive does)."""
        raise NotImplementedError

    def erase(self, list_id: str, email: str) -> None:
        """Delete this person's data at the service for an erasure request, whatever the
        export's mode (a tag or marker export erases the person from the whole audience), with
        the call the service's contract names for it (its removal section).

        Returns only when the service confirmed the deletion, or answered that it holds no
        such person; raises a ``BackendError`` otherwise (``Permanent`` for a refusal)."""
        raise NotImplementedError

    #: Whether ``read_consent`` reads anything at this service.
    reads_consent: ClassVar[bool] = False
    #: The most lists one read-back covers (bounded: an account may have thousands of lists).
    max_consent_lists: ClassVar[int] = 50

    def read_consent(
        self, lists: Sequence[str], *, since: datetime | None, cursor: str | None = None
    ) -> ConsentPage:
        """Read back who unsubscribed, bounced (hard), complained or was cleaned at the service,
        one page per call, with the calls its contract's read-back section names.

        ``lists`` are the list ids to read where the service reads per list (at most
        ``max_consent_lists``; account-wide reads ignore them). ``since`` is when the last
        complete read started (None: read everything); the backend widens it by the overlap
        its contract asks for, so a page may repeat events the last read had (the caller
        de-duplicates). ``cursor`` is the previous page's ``cursor`` (None: the first page).
        Raises the errors above, like ``push``: a caller retries ``Transient`` and
        ``RateLimited`` with the same cursor."""
        raise NotImplementedError

    # Helpers for subclasses ----------------------------------------------------------------------

    def _check_batch(self, batch: Sequence[Any], limit: int | None = None) -> None:
        limit = self.batch_size if limit is None else limit
        if len(batch) > limit:
            raise ValueError(f"A batch holds at most {limit} records, not {len(batch)}.")


def run_steps(
    steps: Sequence[tuple[Message, Callable[[], Message]]], skip_message: Message
) -> list[StepResult]:
    """Run a connection test's named steps (``core.steps.run_steps``): a step fails by raising
    ``BackendError``, kept on its result."""
    return steps_run(steps, skip_message=skip_message, failure=BackendError)
