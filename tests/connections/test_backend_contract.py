"""One contract every destination backend keeps, run against each type's local fake.

A new destination adds a subclass with a ``fake`` fixture (its running fake), a ``backend``
fixture that returns a backend connected to it, ``members``, which reads from the fake's
state who is on a list, and ``holds``, whether the service still keeps a person's data; every
test here must pass unchanged.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.staticfiles import finders
from django.template.loader import get_template

from connections.services import backend_for
from connections.types.base import Backend, PushResult, Record, StepStatus
from connections.types.campaign_monitor.client import CampaignMonitorClient
from connections.types.mailchimp.client import MailchimpClient
from fakes.testing import running_fake
from tests.connections.factories import ConnectionFactory

pytestmark = pytest.mark.django_db
MAILCHIMP_KEY = "demo0mailchimp0key-us21"
ORTTO_PREFIXES = {"global": "", "au": "/au", "eu": "/eu"}


class BackendContract:
    @staticmethod
    def members(fake, destination: str) -> set[str]:
        """The lower-cased addresses on the list, as the fake holds it."""
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


class TestCampaignMonitorBackend(BackendContract):
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
