"""Both clients, through the real pages and backends, against the local fakes (fakes/).

The fakes serve from a thread of this process; nothing is mocked here.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from connections.models import Connection
from connections.services import DatabaseCredentialStore, backend_for
from connections.types.autopilot.client import AutopilotClient
from connections.types.base import (
    AuthRevoked,
    FieldType,
    MemoryCredentialStore,
    RateLimited,
    Record,
    StepStatus,
)
from fakes.testing import running_fake

pytestmark = pytest.mark.django_db

AUTOPILOT_KEY = "demo-autopilot-key"


@pytest.fixture
def cm(settings):
    with running_fake("campaign_monitor") as fake:
        settings.CAMPAIGN_MONITOR_API_URL = fake.base_url
        settings.CAMPAIGN_MONITOR_OAUTH_URL = fake.root_url + "/oauth"
        settings.CAMPAIGN_MONITOR_TOKEN_URL = fake.root_url + "/oauth/token"
        settings.CAMPAIGN_MONITOR_CLIENT_ID = "demo-client-id"
        settings.CAMPAIGN_MONITOR_CLIENT_SECRET = "demo-client-secret"
        yield fake


def active(fake, list_id: str) -> set[str]:
    subscribers = fake.state(list=list_id)["lists"][list_id]["subscribers"]
    return {email for email, subscriber in subscribers.items() if subscriber["State"] == "Active"}


def add_campaign_monitor(client, decision: str = "allow"):
    """Walk the pages: Connect, Authenticate (the fake's consent form), back to our callback."""
    finish = client.post(
        reverse("connections:setup", args=["campaign_monitor"]),
        {"display_name": "CM", "who_can_use": "administrators", "agree": "on"},
    ).url
    target = "pending:" + finish.rstrip("/").rsplit("/", 1)[1]
    authorize = client.post(reverse("connections:authorize"), {"target": target}).url
    consent = {key: values[0] for key, values in parse_qs(urlsplit(authorize).query).items()}
    assert requests.get(authorize, timeout=5).status_code == 200
    back = requests.post(
        authorize.split("?")[0],
        data={**consent, "decision": decision},
        allow_redirects=False,
        timeout=5,
    )
    location = urlsplit(back.headers["Location"])
    assert location.path == reverse("connections:oauth_callback")
    client.get(f"{location.path}?{location.query}")
    return finish


def test_campaign_monitor_connects_lists_pushes_and_reports_partial_failures(as_alice, cm):
    finish = add_campaign_monitor(as_alice)
    assert as_alice.post(finish, {"save": "1", "add_me_as_export_user": "on"}).status_code == 302
    connection = Connection.objects.get()
    backend = backend_for(connection)

    assert [step.status for step in backend.test()] == [StepStatus.PASSED] * 3
    lists = {item.name: item.id for item in backend.list_destinations()}
    newsletter = lists["Demo Client / Newsletter"]
    backend.prepare(newsletter, [])
    result = backend.push(
        newsletter,
        [
            Record("ann@example.com", "Ann", "Lee"),
            Record("bob@example.com", "Bob"),
            Record("not-an-address@example"),
        ],
    )
    assert result.accepted == 2
    assert [(f.email, f.code) for f in result.failures] == [("not-an-address@example", "1")]
    assert active(cm, newsletter) == {"ann@example.com", "bob@example.com"}
    assert backend.remove(newsletter, ["bob@example.com"]).accepted == 1
    assert active(cm, newsletter) == {"ann@example.com"}


def test_campaign_monitor_tokens_are_refreshed_when_the_service_expires_them(as_alice, cm):
    as_alice.post(add_campaign_monitor(as_alice), {"save": "1"})
    connection = Connection.objects.get()
    before = DatabaseCredentialStore(connection.pk).load()
    cm.configure(expire_tokens=True)
    backend_for(connection).authenticate()
    after = DatabaseCredentialStore(connection.pk).load()
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # the fake rotates them
    backend_for(connection).authenticate()


def test_a_revoked_campaign_monitor_token_needs_re_authentication(as_alice, cm):
    as_alice.post(add_campaign_monitor(as_alice), {"save": "1"})
    connection = Connection.objects.get()
    cm.revoke(access_token=DatabaseCredentialStore(connection.pk).load()["access_token"])
    with pytest.raises(AuthRevoked):
        backend_for(connection).authenticate()
    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_REAUTHENTICATION


def test_denying_consent_at_campaign_monitor_leaves_nothing_behind(as_alice, cm):
    finish = add_campaign_monitor(as_alice, decision="deny")
    html = as_alice.get(finish).content.decode()
    assert "access was denied" in html
    assert not Connection.objects.exists()


def test_autopilot_connects_lists_and_pushes_into_a_list(as_alice, autopilot):
    setup = reverse("connections:setup", args=["autopilot"])
    form = {"display_name": "AP", "who_can_use": "administrators", "agree": "on"}
    wrong = as_alice.post(setup, {**form, "api_key": "wrong-key"})
    assert "Autopilot rejected this API key. Check it and try again." in wrong.content.decode()
    finish = as_alice.post(setup, {**form, "api_key": AUTOPILOT_KEY}).url
    as_alice.post(finish, {"save": "1"})
    backend = backend_for(Connection.objects.get())

    assert [step.status for step in backend.test()] == [StepStatus.PASSED] * 3
    target = backend.list_destinations()[0].id
    tier = backend.create_field(target, "Loyalty Tier", FieldType.TEXT)
    age = backend.create_field(target, "Age", FieldType.NUMBER)
    backend.prepare(target, [tier, age])
    batch = [
        Record(f"p{n}@example.com", "P", str(n), {tier.key: "gold", age.key: n}) for n in range(150)
    ]
    for start in range(0, len(batch), backend.batch_size):
        result = backend.push(target, batch[start : start + backend.batch_size])
        assert result.failures == []
    members = autopilot.state(list=target)["accounts"][0]["lists"][target]["members"]
    assert len(members) == 150 and "p149@example.com" in members
    assert backend.remove(target, ["p0@example.com"]).accepted == 1
    assert (
        autopilot.state(list=target, summary=True)["accounts"][0]["lists"][target]["count"] == 149
    )


def test_autopilot_answers_too_many_requests_with_rate_limited(settings):
    with running_fake("autopilot") as fake:
        client = AutopilotClient(
            MemoryCredentialStore({"api_key": AUTOPILOT_KEY}), api_url=fake.base_url
        )
        with pytest.raises(RateLimited) as caught:
            for _ in range(30):
                client.lists()
        assert caught.value.wait > 0
