"""Consent through the API: the records (filtered, paginated), in a profile's detail, and a
connection's read-back started and followed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from audit.models import AuditEntry
from connections import consent
from connections.models import ConsentReadBack
from connections.types import registry
from segments.models import ConsentRecord
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db

RECORDS = "/api/v1/consent-records/"
MARCH = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def shop():
    return ConnectionFactory(display_name="Shop")


@pytest.fixture
def records(shop):
    other = ConnectionFactory(display_name="Journeys")
    made = [
        ConsentRecord.objects.create(
            email="ann@example.com", state="unsubscribed", connection=shop, connection_name="Shop"
        ),
        ConsentRecord.objects.create(
            email="ann@example.com",
            state="bounced",
            connection=other,
            connection_name="Journeys",
            occurred_at=MARCH,
            reason="Mailbox does not exist",
        ),
        ConsentRecord.objects.create(
            email="bo@example.com", state="bounced", connection=shop, connection_name="Shop"
        ),
    ]
    return made


def emails_and_states(response) -> list[tuple[str, str]]:
    return [(row["email"], row["state"]) for row in response.json()["results"]]


def test_the_records_are_listed_and_filtered_by_email_state_and_connection(
    api_charlie, records, shop
):
    everything = api_charlie.get(RECORDS)
    assert everything.status_code == 200
    assert len(everything.json()["results"]) == 3
    by_email = api_charlie.get(RECORDS, {"email": "  ANN@example.com "})
    assert emails_and_states(by_email) == [
        ("ann@example.com", "unsubscribed"),
        ("ann@example.com", "bounced"),
    ]
    by_state = api_charlie.get(RECORDS, {"state": "bounced", "connection": shop.pk})
    assert emails_and_states(by_state) == [("bo@example.com", "bounced")]
    bounced = api_charlie.get(RECORDS, {"state": "bounced", "email": "ann@example.com"}).json()
    (row,) = bounced["results"]
    assert (row["connection_name"], row["reason"], row["state_label"]) == (
        "Journeys",
        "Mailbox does not exist",
        "Bounced",
    )


def test_the_records_are_paginated_like_the_others(api_charlie, records):
    first = api_charlie.get(RECORDS, {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = api_charlie.get(first["next"]).json()
    assert [row["email"] for row in second["results"]] == ["bo@example.com"]


def test_an_unknown_state_is_refused_in_words(api_charlie):
    response = api_charlie.get(RECORDS, {"state": "resubscribed"})
    assert response.status_code == 400
    assert "resubscribed" in response.json()["errors"][0]["message"]


def test_a_profiles_detail_holds_the_records_of_its_address(api_charlie, records):
    ProfileFactory(customer_id="ann", email="Ann@Example.com")
    ProfileFactory(customer_id="cy", email="cy@example.com")
    ann = api_charlie.get("/api/v1/profiles/ann/").json()
    assert sorted(row["state"] for row in ann["consent_records"]) == ["bounced", "unsubscribed"]
    assert api_charlie.get("/api/v1/profiles/cy/").json()["consent_records"] == []
    listed = api_charlie.get("/api/v1/profiles/").json()["results"]
    assert all("consent_records" not in row for row in listed)


class Reading(registry.backend_class("autopilot")):  # type: ignore[misc]
    reads_consent = True

    def list_destinations(self):
        return []

    def read_consent(self, lists, *, since, cursor=None):
        from connections.types.base import ConsentEvent, ConsentPage

        return ConsentPage([ConsentEvent("new@example.com", "unsubscribed", MARCH)])


def test_an_administrator_starts_a_read_and_follows_it(
    api_alice, shop, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(registry, "backend_class", lambda kind: Reading)
    url = f"/api/v1/connections/{shop.pk}/consent-read/"
    assert api_alice.get(url).json()["status"] == "never"
    with django_capture_on_commit_callbacks(execute=True):
        started = api_alice.post(url)
    assert started.status_code == 202
    assert started.json()["status"] == "queued"
    done = api_alice.get(url).json()
    assert (done["status"], done["read_count"], done["new_count"]) == ("succeeded", 1, 1)
    assert ConsentRecord.objects.get().email == "new@example.com"
    assert AuditEntry.objects.filter(action="connection.consent_read_started").count() == 1


def test_a_read_already_running_is_a_conflict(api_alice, shop, monkeypatch):
    monkeypatch.setattr(registry, "backend_class", lambda kind: Reading)
    monkeypatch.setattr(consent, "_someone_reads", lambda connection_id: True)
    response = api_alice.post(f"/api/v1/connections/{shop.pk}/consent-read/")
    assert response.status_code == 409
    assert "already" in response.json()["detail"]


def test_a_type_that_does_not_read_consent_is_refused(api_alice, shop, monkeypatch):
    # Every type reads consent back today; a new one might not.
    monkeypatch.setattr(registry.backend_class(shop.kind), "reads_consent", False)
    response = api_alice.post(f"/api/v1/connections/{shop.pk}/consent-read/")
    assert response.status_code == 400
    assert "do not read consent back yet" in response.json()["errors"][0]["message"]
    assert not ConsentReadBack.objects.exclude(status="never").exists()


@pytest.mark.parametrize("client_name", ["api_bob", "api_charlie"])
def test_contributors_and_viewers_cannot_start_a_read(client_name, request, shop):
    response = request.getfixturevalue(client_name).post(
        f"/api/v1/connections/{shop.pk}/consent-read/"
    )
    assert response.status_code == 403


def test_a_segment_rule_reads_consent_through_the_api(api_bob, records):
    ProfileFactory(customer_id="ann", email="ann@example.com")
    ProfileFactory(customer_id="cy", email="cy@example.com")
    rules = {"match": "all", "conditions": [{"consent": "bounced", "operator": "not_opted_out"}]}
    created = api_bob.post("/api/v1/segments/", {"name": "Mailable", "rules": rules}, format="json")
    assert created.status_code == 201, created.content[:300]
    assert created.json()["rules"] == rules
    estimate = api_bob.post("/api/v1/segments/estimate/", {"rules": rules}, format="json")
    assert estimate.json() == {"count": 1}
    wrong = {"match": "all", "conditions": [{"consent": "maybe", "operator": "opted_out"}]}
    refused = api_bob.post("/api/v1/segments/", {"name": "Wrong", "rules": wrong}, format="json")
    assert refused.status_code == 400
    assert "Choose which opt-out" in refused.json()["errors"][0]["message"]
