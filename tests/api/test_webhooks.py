"""Webhook endpoints through the API, and the events as the OpenAPI document describes them."""

from __future__ import annotations

import json

import jsonschema
import pytest
from django.utils import timezone

from exports import guard
from exports.models import Export, ExportRun
from segments.services import segment_refresh
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory, SegmentFactory
from webhooks import events, services, signing
from webhooks.models import Attempt, Delivery, Endpoint

pytestmark = pytest.mark.django_db
WEBHOOKS = "/api/v1/webhooks"
URL = "https://hooks.example.com/in"


def add(client, **body):
    return client.post(
        WEBHOOKS, {"url": URL, "events": ["export_run.finished"], **body}, format="json"
    )


def test_adding_an_endpoint_answers_its_secret_once(api_alice):
    response = add(api_alice, description="Data team")

    assert response.status_code == 201
    body = response.json()
    assert "no-store" in response["Cache-Control"]
    endpoint = Endpoint.objects.get(pk=body["id"])
    assert body["secret"] == services.endpoint_secret(endpoint)
    assert (body["url"], body["events"], body["description"]) == (
        URL,
        ["export_run.finished"],
        "Data team",
    )
    for later in (api_alice.get(f"{WEBHOOKS}/{endpoint.pk}"), api_alice.get(WEBHOOKS)):
        assert body["secret"] not in later.content.decode()
        assert "secret" not in json.dumps(later.json()).replace("secret_rotated_at", "")


def test_the_page_form_checks_what_the_api_accepts(api_alice, settings):
    settings.DEBUG, settings.WEBHOOKS_ALLOW_HTTP = False, False

    response = add(api_alice, url="http://hooks.example.com/in")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["field"] == "url"
    assert "must start with https://" in error["message"]
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["profile.deleted"]}, "events"),
        ({"url": "not an address"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/in"}, "url"),
        ({"url": "https://10.0.0.5/in"}, "url"),
        ({"url": "https://169.254.169.254/latest/meta-data"}, "url"),
        ({"url": "https://nowhere.example.com/in"}, "url"),
    ],
)
def test_bad_endpoints_are_refused_with_the_field(api_alice, body, field):
    response = add(api_alice, **body)

    assert response.status_code == 400
    # An unknown event is named by its place in the list ("events.0").
    assert {error["field"].split(".")[0] for error in response.json()["errors"]} == {field}


def test_patch_changes_only_what_it_sends(api_alice):
    endpoint_id = add(api_alice, description="Data team").json()["id"]

    response = api_alice.patch(
        f"{WEBHOOKS}/{endpoint_id}", {"events": ["segment.refreshed"]}, format="json"
    )

    assert response.status_code == 200
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    assert (endpoint.url, endpoint.description, endpoint.events) == (
        URL,
        "Data team",
        ["segment.refreshed"],
    )


def test_rotating_the_secret_answers_the_new_one_and_signs_with_it(api_alice):
    created = add(api_alice).json()

    response = api_alice.post(f"{WEBHOOKS}/{created['id']}/rotate-secret")

    assert response.status_code == 200
    rotated = response.json()["secret"]
    assert rotated != created["secret"]
    assert "no-store" in response["Cache-Control"]
    endpoint = Endpoint.objects.get(pk=created["id"])
    assert services.endpoint_secret(endpoint) == rotated
    body = b'{"id": "1"}'
    headers = signing.signed_headers(
        secret=rotated, message_id="msg_1", timestamp=1_700_000_000, body=body
    )
    assert signing.verify(secret=rotated, headers=headers, body=body, now=1_700_000_000)
    assert not signing.verify(
        secret=created["secret"], headers=headers, body=body, now=1_700_000_000
    )


def test_disable_and_enable(api_alice):
    endpoint_id = add(api_alice).json()["id"]

    disabled = api_alice.post(f"{WEBHOOKS}/{endpoint_id}/disable").json()
    enabled = api_alice.post(f"{WEBHOOKS}/{endpoint_id}/enable").json()

    assert (disabled["is_enabled"], enabled["is_enabled"]) == (False, True)


def test_a_test_event_is_queued_and_its_attempts_are_listed_newest_first(api_alice):
    endpoint_id = add(api_alice).json()["id"]

    queued = api_alice.post(f"{WEBHOOKS}/{endpoint_id}/test")

    assert queued.status_code == 202
    assert (queued.json()["event_type"], queued.json()["is_test"]) == ("webhook.test", True)
    older = Delivery.objects.get(pk=queued.json()["id"])
    Attempt.objects.create(
        delivery=older, number=1, attempted_at=timezone.now(), status_code=500, error="boom"
    )
    newer = services.endpoint_send_test(endpoint=Endpoint.objects.get(pk=endpoint_id))
    log = api_alice.get(f"{WEBHOOKS}/{endpoint_id}/deliveries").json()["results"]
    assert [delivery["id"] for delivery in log] == [newer.pk, older.pk]
    assert log[1]["attempts"][0]["status_code"] == 500


def test_removing_an_endpoint(api_alice):
    endpoint_id = add(api_alice).json()["id"]

    assert api_alice.delete(f"{WEBHOOKS}/{endpoint_id}").status_code == 204
    assert not Endpoint.objects.exists()


@pytest.fixture
def document(api_alice) -> dict:
    return api_alice.get("/api/v1/openapi.json").json()


def documented(document: dict, event_type: str) -> jsonschema.Draft202012Validator:
    """A validator for the body the OpenAPI document gives the event."""
    body = document["webhooks"][event_type]["post"]["requestBody"]["content"]
    schema = {**body["application/json"]["schema"], "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def sent_body(event_type: str, data: dict) -> dict:
    endpoint, _secret = services.endpoint_create(
        url=URL, description="", events=[event_type], user=None
    )
    services.event_publish(event_type, data)
    return json.loads(Delivery.objects.get(endpoint=endpoint).body)


def test_every_event_is_in_the_document_as_it_is_sent(document, alice):
    ProfileFactory.create_batch(2)
    segment = SegmentFactory()
    segment_refresh(segment_id=segment.pk)
    export = Export.objects.create(display_name="N", connection=ConnectionFactory(), list_id="l")
    run = ExportRun.objects.create(export=export, trigger="user", status="succeeded", sent=2)
    held = ExportRun.objects.create(
        export=Export.objects.create(display_name="M", connection=export.connection, list_id="m"),
        trigger="schedule",
        status="awaiting_approval",
        list_size=40,
        to_add=1,
        to_remove=30,
        held_because=guard.stored_reasons(
            guard.judge(list_size=40, adds=1, removals=30, thresholds=guard.thresholds_for(export))
        ),
    )
    discarded = ExportRun.objects.create(
        export=Export.objects.create(display_name="D", connection=export.connection, list_id="d"),
        trigger="user",
        status="discarded",
        list_size=10,
        to_remove=9,
        decided_by=alice,
        decided_at=timezone.now(),
        finished_at=timezone.now(),
    )
    bodies = {
        events.EXPORT_RUN_FINISHED: events.export_run_finished(run.pk),
        events.EXPORT_RUN_AWAITING_APPROVAL: events.export_run_awaiting_approval(held.pk),
        events.EXPORT_RUN_DISCARDED: events.export_run_discarded(discarded.pk),
        events.SEGMENT_REFRESHED: events.segment_refreshed(segment.pk, joined=2, left=0),
        events.CONNECTION_NEEDS_REAUTHENTICATION: events.connection_needs_reauthentication(
            export.connection_id
        ),
        events.TEST: events.test_event(),
    }
    assert set(document["webhooks"]) == set(bodies)
    for event_type, data in bodies.items():
        documented(document, event_type).validate(sent_body(event_type, data))
