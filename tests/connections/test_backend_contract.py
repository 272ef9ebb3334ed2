"""One contract every destination backend keeps, run against each type's local fake.

A new destination adds a subclass with a ``backend`` fixture that returns a backend connected to
its fake; every test here must pass unchanged.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

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
    def records(self, count: int, start: int = 0) -> list[Record]:
        return [
            Record(f"member{n}@example.com", "Member", str(n), {"Tier": "gold"})
            for n in range(start, start + count)
        ]

    @pytest.fixture
    def destination(self, backend: Backend) -> str:
        destination = backend.list_destinations()[0].id
        backend.prepare(destination, ["Tier"])
        return destination

    def test_it_declares_its_limits(self, backend):
        assert backend.batch_size >= 1
        assert backend.removal_batch_size >= 1
        assert backend.rate_limit is None or backend.rate_limit > 0

    def test_every_step_of_the_connection_test_passes(self, backend):
        steps = backend.test()
        assert steps and all(step.status == StepStatus.PASSED for step in steps), steps

    def test_it_lists_destinations_with_ids_and_names(self, backend):
        destinations = backend.list_destinations()
        assert destinations and all(d.id and d.name for d in destinations)

    def test_a_full_batch_is_accepted_and_becomes_members(self, backend, destination):
        result = backend.push(destination, self.records(backend.batch_size))
        assert isinstance(result, PushResult)
        assert (result.accepted, result.failures) == (backend.batch_size, [])
        members = set(backend.iter_members(destination))
        assert {r.email for r in self.records(backend.batch_size)} <= members

    def test_pushing_the_same_records_again_updates_them(self, backend, destination):
        backend.push(destination, self.records(3))
        assert backend.push(destination, self.records(3)).accepted == 3
        assert len([m for m in backend.iter_members(destination) if m.startswith("member")]) == 3

    def test_an_empty_batch_sends_nothing(self, backend, destination):
        assert backend.push(destination, []).accepted == 0

    def test_a_batch_over_the_batch_size_is_refused_before_sending(self, backend, destination):
        with pytest.raises(ValueError):
            backend.push(destination, self.records(backend.batch_size + 1))

    def test_a_full_removal_batch_is_taken_and_one_over_refused(self, backend, destination):
        size = backend.removal_batch_size
        backend.push(destination, self.records(min(size, backend.batch_size)))
        emails = [r.email for r in self.records(size)]
        assert backend.remove(destination, emails).failures == []
        with pytest.raises(ValueError):
            backend.remove(destination, [*emails, "one.more@example.com"])

    def test_removed_addresses_leave_the_list(self, backend, destination):
        backend.push(destination, self.records(2))
        assert backend.remove(destination, ["member0@example.com"]).failures == []
        assert "member0@example.com" not in set(backend.iter_members(destination))


class TestCampaignMonitorBackend(BackendContract):
    @pytest.fixture
    def backend(self, settings):
        with running_fake("campaign_monitor") as fake:
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
            credentials = CampaignMonitorClient().exchange_code(
                code=code, redirect_uri=redirect_uri
            )
            yield backend_for(ConnectionFactory(campaign_monitor=True, credentials=credentials))


class TestAutopilotBackend(BackendContract):
    @pytest.fixture
    def backend(self, settings):
        with running_fake("autopilot", rate_limit=0) as fake:
            settings.AUTOPILOT_API_URL = fake.base_url
            yield backend_for(ConnectionFactory(credentials={"api_key": "demo-autopilot-key"}))


class TestMailchimpBackendWithAnApiKey(BackendContract):
    @pytest.fixture
    def backend(self, settings):
        with running_fake("mailchimp") as fake:
            settings.MAILCHIMP_API_URL = fake.base_url
            yield backend_for(
                ConnectionFactory(kind="mailchimp", credentials={"api_key": MAILCHIMP_KEY})
            )


class TestMailchimpBackendSignedInByOAuth(BackendContract):
    @pytest.fixture
    def backend(self, settings):
        with running_fake("mailchimp") as fake:
            settings.MAILCHIMP_API_URL = fake.base_url
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
            yield backend_for(ConnectionFactory(kind="mailchimp", credentials=credentials))


class TestMailchimpBackendWithATag(BackendContract):
    """An export to one tag of an audience: members carry the tag, leavers lose it."""

    @pytest.fixture
    def backend(self, settings):
        with running_fake("mailchimp") as fake:
            settings.MAILCHIMP_API_URL = fake.base_url
            yield backend_for(
                ConnectionFactory(kind="mailchimp", credentials={"api_key": MAILCHIMP_KEY})
            )

    @pytest.fixture
    def destination(self, backend: Backend) -> str:
        destination = backend.list_destinations()[0].id + "#Segment VIP"
        backend.prepare(destination, ["Tier"])
        return destination


def ortto_urls(fake) -> dict[str, str]:
    return {region: f"{fake.root_url}{prefix}/v1" for region, prefix in ORTTO_PREFIXES.items()}


class TestOrttoBackend(BackendContract):
    @pytest.fixture
    def backend(self, settings):
        with running_fake("ortto", rate_limit=0) as fake:
            settings.ORTTO_API_URLS = ortto_urls(fake)
            yield backend_for(
                ConnectionFactory(
                    kind="ortto", credentials={"api_key": "demo-ortto-key", "region": "global"}
                )
            )


class TestOrttoBackendInEurope(BackendContract):
    """The region picks the host: an EU key works only against the EU host."""

    @pytest.fixture
    def backend(self, settings):
        with running_fake("ortto", rate_limit=0) as fake:
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
            settings.ORTTO_API_URLS = ortto_urls(fake)
            yield backend_for(
                ConnectionFactory(kind="ortto", credentials={"api_key": "eu-key", "region": "eu"})
            )
