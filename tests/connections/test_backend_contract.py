"""One contract every destination backend keeps, run against each type's local fake.

A new destination adds a subclass with a ``fake`` fixture (its running fake), a ``backend``
fixture that returns a backend connected to it, ``members``, which reads from the fake's
state who is on a list, and ``holds``, whether the service still keeps a person's data; every
test here must pass unchanged.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.staticfiles import finders
from django.template.loader import get_template

from connections.services import backend_for
from connections.types.base import (
    Backend,
    ConsentState,
    DestinationField,
    FieldsNotFound,
    FieldType,
    PushResult,
    Record,
    SendOptions,
    StepStatus,
)
from connections.types.campaign_monitor.client import CampaignMonitorClient
from connections.types.mailchimp.client import MailchimpClient, subscriber_hash
from fakes.testing import running_fake
from tests.connections.factories import ConnectionFactory

pytestmark = pytest.mark.django_db
MAILCHIMP_KEY = "demo0mailchimp0key-us21"
#: A profile value of each field type, with the options a select field is created with.
SAMPLES = {
    FieldType.TEXT: ("Gold plan", ()),
    FieldType.NUMBER: (42, ()),
    FieldType.DATE: (date(2027, 3, 9), ()),
    FieldType.DATETIME: (datetime(2027, 3, 9, 10, 30, tzinfo=UTC), ()),
    FieldType.BOOLEAN: (True, ()),
    FieldType.SINGLE_SELECT: ("pro", ("Free", "Pro")),
    FieldType.MULTI_SELECT: (["Cake"], ("Tea", "Cake")),
    FieldType.COUNTRY: ("france", ()),
}
ORTTO_PREFIXES = {"global": "", "au": "/au", "eu": "/eu"}


class BackendContract:
    #: Whether ``prepare`` can tell that a mapped field is gone (Autopilot creates fields by
    #: sending values, so there a field is never missing).
    checks_fields = True

    @staticmethod
    def members(fake, destination: str) -> set[str]:
        """The lower-cased addresses on the list, as the fake holds it."""
        raise NotImplementedError

    @staticmethod
    def stored(fake, destination: str, email: str) -> dict:
        """The person's custom field values as the fake holds them, by field key."""
        raise NotImplementedError

    @staticmethod
    def tags_of(fake, destination: str, email: str) -> set[str]:
        """The person's tags at the service (types with tags)."""
        raise NotImplementedError

    @staticmethod
    def opt_out(fake, backend: Backend, destination: str, email: str) -> None:
        """The person unsubscribes at the service."""
        raise NotImplementedError

    @staticmethod
    def opted_out(fake, destination: str, email: str) -> bool:
        """Whether the service holds the person as opted out."""
        raise NotImplementedError

    @staticmethod
    def holds(fake, destination: str, email: str) -> bool:
        """Whether the service still keeps this person (as far as its API can delete them)."""
        raise NotImplementedError

    def records(self, count: int, start: int = 0) -> list[Record]:
        return [
            Record(f"member{n}@example.com", "Member", str(n)) for n in range(start, start + count)
        ]

    @pytest.fixture
    def destination(self, backend: Backend) -> str:
        destination = backend.list_destinations()[0].id
        backend.prepare(destination, [])
        return destination

    # Fields, tags, status and consent (issue 24) ------------------------------------------

    def created_fields(self, backend: Backend, destination: str) -> list[DestinationField]:
        return [
            backend.create_field(destination, f"Field {kind}", kind, SAMPLES[kind][1])
            for kind in sorted(backend.creatable_field_types)
        ]

    def test_the_fields_start_with_the_builtins(self, backend, destination):
        fields = backend.list_fields(destination)
        assert [(f.key, f.builtin) for f in fields[:3]] == [
            ("email", True),
            ("first_name", True),
            ("last_name", True),
        ]
        assert not any(f.builtin for f in fields[3:])

    def test_every_type_it_creates_is_converted_and_accepted_by_the_service(
        self, fake, backend, destination
    ):
        fields = self.created_fields(backend, destination)
        assert FieldType.TEXT in {field.type for field in fields}
        backend.prepare(destination, fields)
        values = {field.key: SAMPLES[field.type][0] for field in fields}
        result = backend.push(destination, [Record("typed@example.com", fields=values)])
        assert (result.accepted, result.failures, result.warnings) == (1, [], [])
        stored = self.stored(fake, destination, "typed@example.com")
        for field in fields:
            wire, _warning = backend.convert(backend.fields_by_key[field.key], values[field.key])
            assert stored[field.key] == wire, field

    def test_an_empty_value_clears_the_field(self, fake, backend, destination):
        text = backend.create_field(destination, "Plan", FieldType.TEXT)
        backend.prepare(destination, [text])
        backend.push(destination, [Record("clear@example.com", fields={text.key: "Pro"})])
        assert self.stored(fake, destination, "clear@example.com")[text.key] == "Pro"
        result = backend.push(destination, [Record("clear@example.com", fields={text.key: None})])
        assert result.failures == []
        assert self.stored(fake, destination, "clear@example.com").get(text.key) in (None, "")

    def test_a_value_too_long_is_sent_shortened_with_a_warning(self, fake, backend, destination):
        text = backend.create_field(destination, "Bio", FieldType.TEXT)
        backend.prepare(destination, [text])
        field = backend.fields_by_key[text.key]
        if field.max_length is None:
            pytest.skip("the service sets no length")
        long = "x" * (field.max_length + 10)
        result = backend.push(destination, [Record("long@example.com", fields={text.key: long})])
        assert (result.accepted, result.failures) == (1, [])
        assert [(w.email, w.code) for w in result.warnings] == [
            ("long@example.com", "value_shortened")
        ]
        stored = self.stored(fake, destination, "long@example.com")[text.key]
        assert stored == "x" * field.max_length

    def test_a_value_that_cannot_be_converted_fails_its_record_only(
        self, fake, backend, destination
    ):
        number = backend.create_field(destination, "Score", FieldType.NUMBER)
        backend.prepare(destination, [number])
        result = backend.push(
            destination,
            [
                Record("bad@example.com", fields={number.key: "lots"}),
                Record("good@example.com", fields={number.key: 7}),
            ],
        )
        assert result.accepted == 1
        assert [(f.email, f.code) for f in result.failures] == [
            ("bad@example.com", "invalid_value")
        ]
        assert "Score" in str(result.failures[0].message)
        assert "invalid_value" in backend.lasting_refusal_codes  # not sent again unchanged

    def test_a_mapped_field_deleted_at_the_service_fails_the_run_at_once(
        self, backend, destination
    ):
        if not self.checks_fields:
            pytest.skip("the service creates a field when a value is sent")
        gone = DestinationField("gone-field", "Gone field", FieldType.TEXT)
        with pytest.raises(FieldsNotFound, match="Gone field"):
            backend.prepare(destination, [gone])

    def test_tags_are_added_and_taken_off(self, fake, backend, destination):
        if not backend.supports_tags:
            pytest.skip("the service has no tags")
        backend.push(destination, [Record("tagged@example.com", tags=("VIP", "Spring"))])
        assert {"VIP", "Spring"} <= self.tags_of(fake, destination, "tagged@example.com")
        result = backend.push(destination, [Record("tagged@example.com", removed_tags=("VIP",))])
        assert result.failures == []
        tags = self.tags_of(fake, destination, "tagged@example.com")
        assert "VIP" not in tags and "Spring" in tags

    def test_someone_who_unsubscribed_is_never_subscribed_again(self, fake, backend, destination):
        backend.push(destination, [Record("gone@example.com", "Gone")])
        self.opt_out(fake, backend, destination, "gone@example.com")
        statuses = backend.new_subscriber_statuses or ("subscribed",)
        for status in statuses:
            backend.prepare(
                destination, [], SendOptions(new_subscriber_status=status, consent_to_track=True)
            )
            backend.push(destination, [Record("gone@example.com", "Gone", consent=True)])
            backend.push(
                destination, [Record("gone@example.com", "Gone", consent=True, returning=True)]
            )
        assert self.opted_out(fake, destination, "gone@example.com")

    def test_preview_names_the_address_and_the_values_as_sent(self, backend, destination):
        text = backend.create_field(destination, "Plan", FieldType.TEXT)
        backend.prepare(destination, [text])
        rows = backend.preview(Record("preview@example.com", "Ann", fields={text.key: "Pro"}))
        assert rows[0] == ("Email address", "preview@example.com")
        assert any(value == "Pro" for _name, value in rows)

    def test_it_declares_its_limits(self, backend):
        assert backend.batch_size >= 1
        assert backend.removal_batch_size >= 1
        assert backend.rate_limit is None or backend.rate_limit > 0

    def test_it_has_its_own_icon_and_help_on_the_setup_page(self, backend):
        assert backend.icon != Backend.icon and finders.find(backend.icon), backend.icon
        assert "<p" in get_template(backend.help_template).render({})

    def test_every_step_of_the_connection_test_passes(self, backend):
        steps = backend.test()
        assert steps and all(step.status == StepStatus.PASSED for step in steps), steps

    def test_it_lists_destinations_with_ids_and_names(self, backend):
        destinations = backend.list_destinations()
        assert destinations and all(d.id and d.name for d in destinations)

    def test_a_full_batch_is_accepted_and_becomes_members(self, fake, backend, destination):
        result = backend.push(destination, self.records(backend.batch_size))
        assert isinstance(result, PushResult)
        assert (result.accepted, result.failures) == (backend.batch_size, [])
        members = self.members(fake, destination)
        assert {r.email for r in self.records(backend.batch_size)} <= members

    def test_pushing_the_same_records_again_updates_them(self, fake, backend, destination):
        backend.push(destination, self.records(3))
        assert backend.push(destination, self.records(3)).accepted == 3
        members = self.members(fake, destination)
        assert len([m for m in members if m.startswith("member")]) == 3

    def test_an_empty_batch_sends_nothing(self, backend, destination):
        assert backend.push(destination, []).accepted == 0

    def test_a_batch_over_the_batch_size_is_refused_before_sending(self, backend, destination):
        with pytest.raises(ValueError):
            backend.push(destination, self.records(backend.batch_size + 1))

    def test_a_full_removal_batch_is_taken_and_one_over_refused(self, backend, destination):
        size = backend.removal_batch_size_for(destination)
        backend.push(destination, self.records(min(size, backend.batch_size)))
        emails = [r.email for r in self.records(size)]
        assert backend.remove(destination, emails).failures == []
        with pytest.raises(ValueError):
            backend.remove(destination, [*emails, "one.more@example.com"])

    def test_removed_addresses_leave_the_list(self, fake, backend, destination):
        backend.push(destination, self.records(2))
        assert backend.remove(destination, ["member0@example.com"]).failures == []
        assert self.members(fake, destination) == {"member1@example.com"}

    def test_an_erased_person_is_deleted_at_the_service_not_only_taken_off(
        self, fake, backend, destination
    ):
        backend.push(destination, self.records(2))
        backend.erase(destination, "member0@example.com")
        assert not self.holds(fake, destination, "member0@example.com")
        assert self.holds(fake, destination, "member1@example.com")
        assert self.members(fake, destination) == {"member1@example.com"}

    def test_someone_removed_earlier_is_still_erased(self, fake, backend, destination):
        backend.push(destination, self.records(1))
        backend.remove(destination, ["member0@example.com"])
        backend.erase(destination, "member0@example.com")
        assert not self.holds(fake, destination, "member0@example.com")

    def test_erasing_someone_the_service_never_had_is_confirmed(self, fake, backend, destination):
        backend.erase(destination, "never.sent@example.com")  # returns: nothing to delete
        assert not self.holds(fake, destination, "never.sent@example.com")

    # Consent read-back (issue 26), for the types that read it --------------------------------

    UNSUBSCRIBED_STATES = (ConsentState.UNSUBSCRIBED, ConsentState.PERMISSION_OFF)
    BOUNCED_STATES = (ConsentState.BOUNCED, ConsentState.CLEANED, ConsentState.SUPPRESSED)

    def consent(self, fake, destination: str, emails: list[str], state: str) -> None:
        """These people opt out at the service (its fake's ``POST /_fake/consent``)."""
        fake.consent(emails, state, list_id=destination.partition("#")[0])

    @staticmethod
    def read_consent(backend: Backend, lists: list[str], cursor: str | None = None) -> list:
        """Every page of a read-back from ``cursor`` on, by a new backend each page (as after
        a restart); each page's cursor is opaque and at most 1,000 characters."""
        pages = []
        while True:
            page = type(backend)(backend.store).read_consent(lists, since=None, cursor=cursor)
            assert cursor is None or page.events or page.cursor != cursor
            pages.append(page)
            cursor = page.cursor
            if cursor is None:
                return pages
            assert len(cursor) <= 1000

    def test_read_consent_reads_back_who_unsubscribed_or_bounced_there(
        self, fake, backend, destination
    ):
        if not backend.reads_consent:
            pytest.skip("the type reads no consent back")
        backend.push(destination, self.records(3))
        self.consent(fake, destination, ["member0@example.com"], "unsubscribed")
        self.consent(fake, destination, ["member1@example.com"], "bounced")
        pages = self.read_consent(backend, [destination])
        events = [event for page in pages for event in page.events]
        found = {(event.email.lower(), event.state) for event in events}
        # Ortto says only that the permission is off (``ConsentState.PERMISSION_OFF``).
        assert found & {("member0@example.com", state) for state in self.UNSUBSCRIBED_STATES}
        # Each service has its own word for a hard bounce: bounced, cleaned or suppressed.
        assert found & {("member1@example.com", state) for state in self.BOUNCED_STATES}
        # Ortto's permission is off for people created without consent too (member2 here).
        assert {state for email, state in found if email == "member2@example.com"} <= {
            ConsentState.PERMISSION_OFF
        }
        assert all(e.occurred_at is None or e.occurred_at.tzinfo for e in events)
        assert all(len(e.reason) <= 200 for e in events)

    def test_read_consent_resumed_from_a_middle_cursor_reads_the_rest(
        self, fake, backend, destination
    ):
        if not backend.reads_consent:
            pytest.skip("the type reads no consent back")
        backend.push(destination, self.records(2))
        self.consent(fake, destination, ["member0@example.com", "member1@example.com"], "bounced")
        whole = self.read_consent(backend, [destination])
        everything = [event for page in whole for event in page.events]
        assert len(everything) >= 2
        if len(whole) > 1:
            rest = self.read_consent(backend, [destination], cursor=whole[0].cursor)
            assert [e for page in rest for e in page.events] == everything[len(whole[0].events) :]


class TestCampaignMonitorBackend(BackendContract):
    @staticmethod
    def subscriber(fake, destination, email):
        return fake.state(list=destination)["lists"][destination]["subscribers"][email]

    @classmethod
    def stored(cls, fake, destination, email):
        return cls.subscriber(fake, destination, email)["CustomFields"]

    @staticmethod
    def opt_out(fake, backend, destination, email):
        path = f"subscribers/{destination}/unsubscribe.json"
        backend.client._api("POST", path, json={"EmailAddress": email}, list_id=destination)

    @classmethod
    def opted_out(cls, fake, destination, email):
        return cls.subscriber(fake, destination, email)["State"] == "Unsubscribed"

    @staticmethod
    def members(fake, destination):
        subscribers = fake.state(list=destination)["lists"][destination]["subscribers"]
        return {email for email, s in subscribers.items() if s["State"] == "Active"}

    @staticmethod
    def holds(fake, destination, email):
        """Campaign Monitor's one deletion leaves the subscriber in the Deleted state."""
        subscribers = fake.state(list=destination)["lists"][destination]["subscribers"]
        return email in subscribers and subscribers[email]["State"] != "Deleted"

    @pytest.fixture
    def fake(self):
        with running_fake("campaign_monitor") as fake:
            yield fake

    @pytest.fixture
    def backend(self, fake, settings):
        settings.CAMPAIGN_MONITOR_API_URL = fake.base_url
        settings.CAMPAIGN_MONITOR_TOKEN_URL = fake.root_url + "/oauth/token"
        settings.CAMPAIGN_MONITOR_CLIENT_ID = "demo-client-id"
        settings.CAMPAIGN_MONITOR_CLIENT_SECRET = "demo-client-secret"
        redirect_uri = "https://relay.test/callback/"
        allowed = requests.post(
            fake.root_url + "/oauth",
            data={
                "client_id": "demo-client-id",
                "redirect_uri": redirect_uri,
                "scope": "ManageLists,ImportSubscribers",
                "decision": "allow",
            },
            allow_redirects=False,
            timeout=5,
        )
        code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
        credentials = CampaignMonitorClient().exchange_code(code=code, redirect_uri=redirect_uri)
        return backend_for(ConnectionFactory(campaign_monitor=True, credentials=credentials))


class TestAutopilotBackend(BackendContract):
    checks_fields = False

    @staticmethod
    def contact(fake, email):
        return fake.state()["accounts"][0]["contacts"][email]

    @classmethod
    def stored(cls, fake, destination, email):
        return cls.contact(fake, email)["custom"]

    @staticmethod
    def opt_out(fake, backend, destination, email):
        backend.client._api("POST", f"contact/{email}/unsubscribe")

    @classmethod
    def opted_out(cls, fake, destination, email):
        return cls.contact(fake, email)["unsubscribed"] is True

    @staticmethod
    def members(fake, destination):
        return set(fake.state(list=destination)["accounts"][0]["lists"][destination]["members"])

    @staticmethod
    def holds(fake, destination, email):
        return email in fake.state()["accounts"][0]["contacts"]

    @pytest.fixture
    def fake(self):
        with running_fake("autopilot", rate_limit=0) as fake:
            yield fake

    @pytest.fixture
    def backend(self, fake, settings):
        settings.AUTOPILOT_API_URL = fake.base_url
        return backend_for(ConnectionFactory(credentials={"api_key": "demo-autopilot-key"}))


class MailchimpContract(BackendContract):
    @staticmethod
    def member(fake, destination, email):
        audience = destination.partition("#")[0]
        return fake.state(list=audience)["accounts"][0]["audiences"][audience]["members"][email]

    @classmethod
    def stored(cls, fake, destination, email):
        return cls.member(fake, destination, email)["merge_fields"]

    @classmethod
    def tags_of(cls, fake, destination, email):
        return set(cls.member(fake, destination, email)["tags"])

    @staticmethod
    def opt_out(fake, backend, destination, email):
        audience = destination.partition("#")[0]
        path = f"lists/{audience}/members/{subscriber_hash(email)}"
        backend.client._api("PUT", path, json={"email_address": email, "status": "unsubscribed"})

    @classmethod
    def opted_out(cls, fake, destination, email):
        return cls.member(fake, destination, email)["status"] == "unsubscribed"

    @staticmethod
    def members(fake, destination):
        audience, _separator, tag = destination.partition("#")
        state = fake.state(list=audience)["accounts"][0]["audiences"][audience]["members"]
        return {
            email
            for email, member in state.items()
            if member["status"] == "subscribed" and (not tag or tag in member["tags"])
        }

    @staticmethod
    def holds(fake, destination, email):
        """Archived members keep their data; permanently deleted ones are only "forgotten"."""
        audience = destination.partition("#")[0]
        state = fake.state(list=audience)["accounts"][0]["audiences"][audience]
        return email in state["members"]

    @pytest.fixture
    def fake(self, settings):
        with running_fake("mailchimp") as fake:
            settings.MAILCHIMP_API_URL = fake.base_url
            yield fake


class TestMailchimpBackendWithAnApiKey(MailchimpContract):
    @pytest.fixture
    def backend(self, fake):
        credentials = {"api_key": MAILCHIMP_KEY}
        return backend_for(ConnectionFactory(kind="mailchimp", credentials=credentials))


class TestMailchimpBackendSignedInByOAuth(MailchimpContract):
    @pytest.fixture
    def backend(self, fake, settings):
        settings.MAILCHIMP_OAUTH_URL = fake.root_url + "/oauth2"
        settings.MAILCHIMP_CLIENT_ID = "demo-mailchimp-client-id"
        settings.MAILCHIMP_CLIENT_SECRET = "demo-mailchimp-client-secret"
        redirect_uri = "https://relay.test/callback/"
        allowed = requests.post(
            fake.root_url + "/oauth2/authorize",
            data={
                "client_id": "demo-mailchimp-client-id",
                "redirect_uri": redirect_uri,
                "decision": "allow",
            },
            allow_redirects=False,
            timeout=5,
        )
        code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
        credentials = MailchimpClient().exchange_code(code=code, redirect_uri=redirect_uri)
        assert credentials["dc"] == "us21"
        return backend_for(ConnectionFactory(kind="mailchimp", credentials=credentials))


class TestMailchimpBackendWithATag(MailchimpContract):
    """An export to one tag of an audience: members carry the tag, leavers lose it."""

    @pytest.fixture
    def backend(self, fake):
        credentials = {"api_key": MAILCHIMP_KEY}
        return backend_for(ConnectionFactory(kind="mailchimp", credentials=credentials))

    @pytest.fixture
    def destination(self, backend: Backend) -> str:
        destination = backend.list_destinations()[0].id + "#Segment VIP"
        backend.prepare(destination, [])
        return destination


class OrttoContract(BackendContract):
    @staticmethod
    def person(fake, email):
        return next(
            account["people"][email]
            for account in fake.state()["accounts"]
            if email in account["people"]
        )

    @classmethod
    def stored(cls, fake, destination, email):
        return cls.person(fake, email)["fields"]

    @classmethod
    def tags_of(cls, fake, destination, email):
        return set(cls.person(fake, email)["tags"])

    @staticmethod
    def opt_out(fake, backend, destination, email):
        backend.client.merge([{"str::email": email, "bol::p": False}])

    @classmethod
    def opted_out(cls, fake, destination, email):
        return cls.person(fake, email)["fields"].get("bol::p") is False

    @staticmethod
    def holds(fake, destination, email):
        """Archived people are still held (for 29 days); deleted ones are gone."""
        return any(email in account["people"] for account in fake.state()["accounts"])

    @staticmethod
    def members(fake, destination):
        state = fake.state(list=destination)["accounts"]
        return {
            email
            for account in state
            if destination in account["audiences"]
            for email in account["audiences"][destination]["members"]
        }

    @pytest.fixture
    def fake(self, settings):
        with running_fake("ortto", rate_limit=0) as fake:
            settings.ORTTO_API_URLS = {
                region: f"{fake.root_url}{prefix}/v1" for region, prefix in ORTTO_PREFIXES.items()
            }
            yield fake


class TestOrttoBackend(OrttoContract):
    @pytest.fixture
    def backend(self, fake):
        credentials = {"api_key": "demo-ortto-key", "region": "global"}
        return backend_for(ConnectionFactory(kind="ortto", credentials=credentials))


class TestOrttoBackendInEurope(OrttoContract):
    """The region picks the host: an EU key works only against the EU host."""

    @pytest.fixture
    def backend(self, fake):
        fake.seed(
            accounts=[
                {
                    "id": "eu",
                    "region": "eu",
                    "api_keys": ["eu-key"],
                    "audiences": [{"name": "EU news", "marker": "bol:cm:eu-news"}],
                }
            ]
        )
        credentials = {"api_key": "eu-key", "region": "eu"}
        return backend_for(ConnectionFactory(kind="ortto", credentials=credentials))
