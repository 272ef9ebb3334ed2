"""End to end: a real worker process pushes exports to the fakes over HTTP, through Redis and
PostgreSQL, with the faults the services really produce."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.translation import shown
from connections.models import Connection
from connections.services import credentials_encrypt
from exports import runs, services
from exports.models import Alert, Export, ExportRun, ExportRunFailure, SyncState
from segments.models import ConsentRecord, Profile
from segments.services import segment_refresh
from tests.e2e.conftest import wait_until
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
Status = ExportRun.Status
CM_IMPORTS = "POST /subscribers/{listid}/import.json"


def cm_list_id(fake) -> str:
    client = next(iter(fake.state()["clients"].values()))
    return client["list_ids"][0]


def autopilot_list_id(fake) -> str:
    return next(iter(fake.state()["accounts"][0]["lists"]))


@pytest.fixture
def cm_connection(cm_fake, alice):
    cm_fake.seed(
        accounts=[
            {
                "id": "demo",
                "tokens": [
                    {
                        "access_token": "e2e-access",
                        "refresh_token": "e2e-refresh",
                        "expires_in": 3600,
                    }
                ],
            }
        ]
    )
    credentials = {
        "access_token": "e2e-access",
        "refresh_token": "e2e-refresh",
        "expires_in": 3600,
        "expires_at": time.time() + 3600,
    }
    return _connection("campaign_monitor", credentials, alice)


@pytest.fixture
def autopilot_connection(alice):
    return _connection("autopilot", {"api_key": "demo-autopilot-key"}, alice)


def _connection(kind: str, credentials: dict, user) -> Connection:
    return Connection.objects.create(
        kind=kind,
        display_name=kind,
        who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
        consent_given_by=user,
        consent_given_at=timezone.now(),
        created_by=user,
        encrypted_credentials=credentials_encrypt(credentials),
    )


@pytest.fixture
def people():
    """200 deliverable profiles, plus a duplicate, a missing and an invalid address."""
    for number in range(200):
        ProfileFactory(
            customer_id=f"c{number:03d}",
            email=f"Person{number}@Example.com",
            first_name=f"Første{number}",
            last_name="Ødegård",
        )
    ProfileFactory(customer_id="dup", email="person7@example.com")
    ProfileFactory(customer_id="none", email="")
    ProfileFactory(customer_id="bad", email="not-an-address")
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "customer_id", "operator": "is_not_empty"}]}
    )
    segment_refresh(segment_id=segment.pk)
    return segment


def make_export(connection, list_id, segment, user) -> Export:
    export = Export.objects.create(
        display_name=f"To {connection.kind}",
        connection=connection,
        list_id=list_id,
        first_name_field="first_name",
        last_name_field="last_name",
        created_by=user,
    )
    export.segments.set([segment])
    return export


def finished(run: ExportRun, timeout: float = 60) -> ExportRun:
    def done():
        run.refresh_from_db()
        return not run.is_active

    wait_until(done, timeout=timeout, message=f"run {run.pk} to finish")
    if run.status in (Status.SUCCEEDED, Status.COMPLETED_WITH_WARNINGS):
        # Every member and every leaver is in exactly one count, on every end-to-end run.
        assert runs.unaccounted(run) == 0, {
            name: getattr(run, name)
            for name in ("profiles_total", "to_remove", *ExportRun.OUTCOME_COUNTS)
        }
    return run


EXPECTED = {f"person{number}@example.com" for number in range(200)}


def test_a_run_delivers_every_profile_to_campaign_monitor_with_its_name(
    worker, cm_fake, cm_connection, people, alice
):
    list_id = cm_list_id(cm_fake)
    run = finished(
        services.run_request(export=make_export(cm_connection, list_id, people, alice), user=alice)
    )

    assert (run.status, run.profiles_total, run.sent, run.failed, run.skipped) == (
        Status.SUCCEEDED,
        203,
        200,
        0,
        3,
    ), worker.log()[-3000:]
    subscribers = cm_fake.state(list=list_id)["lists"][list_id]["subscribers"]
    assert set(subscribers) == EXPECTED
    assert subscribers["person5@example.com"]["Name"] == "Første5 Ødegård"
    skipped = dict(ExportRunFailure.objects.filter(run=run).values_list("customer_id", "code"))
    assert skipped == {"dup": "duplicate_email", "none": "missing_email", "bad": "invalid_email"}


def test_a_run_delivers_every_profile_to_autopilot_in_batches_of_100(
    worker, autopilot_fake, autopilot_connection, people, alice
):
    list_id = autopilot_list_id(autopilot_fake)
    run = finished(
        services.run_request(
            export=make_export(autopilot_connection, list_id, people, alice), user=alice
        )
    )

    assert (run.status, run.sent) == (Status.SUCCEEDED, 200), worker.log()[-3000:]
    state = autopilot_fake.state(list=list_id)
    members = state["accounts"][0]["lists"][list_id]["members"]
    assert set(members) == EXPECTED
    assert (
        members["person9@example.com"]["FirstName"],
        members["person9@example.com"]["LastName"],
    ) == ("Første9", "Ødegård")
    assert state["stats"]["requests_by_endpoint"]["POST /contacts"] == 2


def test_addresses_the_service_refuses_are_listed_per_record(
    worker, cm_fake, cm_connection, people, alice
):
    list_id = cm_list_id(cm_fake)
    client_id = next(iter(cm_fake.state()["clients"]))
    cm_fake.seed(
        accounts=[
            {
                "id": "demo",
                "clients": [
                    {
                        "id": client_id,
                        "lists": [
                            {
                                "id": list_id,
                                "subscribers": [
                                    {
                                        "EmailAddress": "person3@example.com",
                                        "Name": "Gone",
                                        "State": "Unsubscribed",
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    )
    run = finished(
        services.run_request(export=make_export(cm_connection, list_id, people, alice), user=alice)
    )

    assert (run.status, run.sent, run.failed) == (Status.COMPLETED_WITH_WARNINGS, 199, 1), (
        worker.log()[-3000:]
    )
    failure = ExportRunFailure.objects.get(run=run, skipped=False)
    assert (failure.email, failure.customer_id, failure.code) == (
        "person3@example.com",
        "c003",
        "206",
    )
    subscribers = cm_fake.state(list=list_id)["lists"][list_id]["subscribers"]
    assert subscribers["person3@example.com"]["State"] == "Unsubscribed"  # never re-subscribed


@pytest.mark.parametrize(
    "faults",
    [
        {"burst_429": 6, "burst_429_headers": "ratelimit", "burst_429_reset": 1},
        {"burst_429": 4, "burst_429_headers": "none"},
        {"error_next": 4, "error_status": 503},
        {"drop_next": 2},
    ],
    ids=["429-storm-with-headers", "429-storm-without-headers", "5xx-burst", "dropped-connections"],
)
def test_a_run_rides_out_rate_limits_and_server_errors(
    worker, autopilot_fake, autopilot_connection, people, alice, faults
):
    autopilot_fake.configure(**faults)
    list_id = autopilot_list_id(autopilot_fake)
    run = finished(
        services.run_request(
            export=make_export(autopilot_connection, list_id, people, alice), user=alice
        ),
        timeout=90,
    )

    assert (run.status, run.sent, run.failed) == (Status.SUCCEEDED, 200, 0), worker.log()[-3000:]
    assert (
        set(autopilot_fake.state(list=list_id)["accounts"][0]["lists"][list_id]["members"])
        == EXPECTED
    )


def test_a_token_that_expires_mid_run_is_refreshed_and_the_run_goes_on(
    worker, cm_fake, cm_connection, alice
):
    for number in range(3000):
        ProfileFactory(email=f"p{number}@example.com")
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "email", "operator": "is_not_empty"}]}
    )
    segment_refresh(segment_id=segment.pk)
    cm_fake.configure(latency_ms=150)
    list_id = cm_list_id(cm_fake)
    run = services.run_request(
        export=make_export(cm_connection, list_id, segment, alice), user=alice
    )
    wait_until(lambda: ExportRun.objects.get(pk=run.pk).sent > 0, message="the first batch")
    cm_fake.configure(expire_tokens=True)
    run = finished(run)

    assert (run.status, run.sent) == (Status.SUCCEEDED, 3000), worker.log()[-3000:]
    assert cm_fake.state(list=list_id)["lists"][list_id]["counts"]["Active"] == 3000
    cm_connection.refresh_from_db()
    assert cm_connection.status == Connection.Status.HEALTHY


def test_a_worker_killed_mid_run_is_replaced_and_the_run_completes_with_nobody_missing(
    worker, autopilot_fake, autopilot_connection, alice
):
    for number in range(2000):
        ProfileFactory(email=f"p{number}@example.com")
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "email", "operator": "is_not_empty"}]}
    )
    segment_refresh(segment_id=segment.pk)
    autopilot_fake.configure(latency_ms=100)
    list_id = autopilot_list_id(autopilot_fake)
    run = services.run_request(
        export=make_export(autopilot_connection, list_id, segment, alice), user=alice
    )
    wait_until(lambda: ExportRun.objects.get(pk=run.pk).sent >= 400, message="some batches")

    worker.kill()
    interrupted = ExportRun.objects.get(pk=run.pk)
    assert interrupted.status == Status.RUNNING and interrupted.sent < 2000
    # The worker that starts picks the stalled run up itself, without beat's sweeper.
    worker.start()
    run = finished(run, timeout=90)

    assert (run.status, run.sent, run.failed) == (Status.SUCCEEDED, 2000, 0), worker.log()[-3000:]
    members = autopilot_fake.state(list=list_id)["accounts"][0]["lists"][list_id]["members"]
    assert set(members) == {f"p{number}@example.com" for number in range(2000)}


def test_two_simultaneous_run_requests_start_one_run(worker, autopilot_connection, people, alice):
    export = make_export(autopilot_connection, "contactlist_x", people, alice)
    outcomes = []

    def request_run():
        try:
            services.run_request(export=export, user=alice)
            outcomes.append("queued")
        except services.ExportAlreadyRunning:
            outcomes.append("refused")

    threads = [threading.Thread(target=request_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["queued", "refused"]
    assert ExportRun.objects.filter(export=export).count() == 1


def test_cancel_job_stops_a_running_export(worker, autopilot_fake, autopilot_connection, alice):
    for number in range(2000):
        ProfileFactory(email=f"p{number}@example.com")
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "email", "operator": "is_not_empty"}]}
    )
    segment_refresh(segment_id=segment.pk)
    autopilot_fake.configure(latency_ms=100)
    run = services.run_request(
        export=make_export(autopilot_connection, autopilot_list_id(autopilot_fake), segment, alice),
        user=alice,
    )
    wait_until(lambda: ExportRun.objects.get(pk=run.pk).sent > 0, message="the first batch")
    services.run_cancel(run=ExportRun.objects.get(pk=run.pk))
    run = finished(run)
    assert run.status == Status.CANCELLED
    assert 0 < run.sent < 2000


def test_mirror_mode_keeps_the_list_equal_to_the_segment_run_after_run(
    worker, cm_fake, cm_connection, people, alice
):
    list_id = cm_list_id(cm_fake)
    export = make_export(cm_connection, list_id, people, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    first = finished(services.run_request(export=export, user=alice))
    assert first.added == 200, worker.log()[-3000:]

    imports_before = cm_fake.state()["stats"]["requests_by_endpoint"].get(
        "POST /subscribers/{listid}/import.json"
    )
    unchanged = finished(services.run_request(export=export, user=alice))
    stats = cm_fake.state()["stats"]["requests_by_endpoint"]
    assert (unchanged.unchanged, unchanged.sent) == (200, 0)
    assert stats.get("POST /subscribers/{listid}/import.json") == imports_before

    Profile.objects.filter(customer_id__in=["c010", "c011", "c012"]).delete()
    Profile.objects.filter(customer_id="c020").update(first_name="Renamed")
    segment_refresh(segment_id=people.pk)
    third = finished(services.run_request(export=export, user=alice))

    assert (third.removed, third.updated, third.unchanged) == (3, 1, 196), worker.log()[-3000:]
    subscribers = cm_fake.state(list=list_id)["lists"][list_id]["subscribers"]
    active = {email for email, subscriber in subscribers.items() if subscriber["State"] == "Active"}
    assert active == EXPECTED - {
        "person10@example.com",
        "person11@example.com",
        "person12@example.com",
    }
    assert subscribers["person10@example.com"]["State"] == "Deleted"
    assert subscribers["person20@example.com"]["Name"] == "Renamed Ødegård"

    ProfileFactory(customer_id="back", email="person10@example.com", first_name="Back")
    segment_refresh(segment_id=people.pk)
    fourth = finished(services.run_request(export=export, user=alice))
    assert (fourth.added, fourth.failed) == (1, 0), worker.log()[-3000:]
    subscriber = cm_fake.state(list=list_id)["lists"][list_id]["subscribers"][
        "person10@example.com"
    ]
    assert (subscriber["State"], subscriber["Name"]) == ("Active", "Back Lee")


def test_forty_leavers_cost_one_call_each_and_those_who_opted_out_are_remembered(
    worker, cm_fake, cm_connection, people, alice
):
    """The list's unsubscribed and bounced people are read once for the removal pass, not each
    leaver's state: 40 leavers take 40 deletes and two list reads."""
    list_id = cm_list_id(cm_fake)
    export = make_export(cm_connection, list_id, people, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    assert finished(services.run_request(export=export, user=alice)).added == 200
    unsubscribed = ["person100@example.com", "person101@example.com", "person102@example.com"]
    bounced = ["person103@example.com", "person104@example.com"]
    cm_fake.consent(unsubscribed, "unsubscribed", list_id=list_id)
    cm_fake.consent(bounced, "bounced", list_id=list_id)
    cm_fake.consent(["person0@example.com"], "bounced", list_id=list_id)  # stays in the segment
    Profile.objects.filter(customer_id__in=[f"c{n}" for n in range(100, 140)]).delete()
    segment_refresh(segment_id=people.pk)
    before = cm_fake.state(summary=True)["stats"]["requests_by_endpoint"]
    run = finished(services.run_request(export=export, user=alice))
    after = cm_fake.state(summary=True)["stats"]["requests_by_endpoint"]

    calls = {name: after[name] - before.get(name, 0) for name in after}
    assert (run.removed, run.failed) == (40, 0), worker.log()[-3000:]
    # Before these list reads: 40 reads of a subscriber's state and 40 deletes.
    assert {name: count for name, count in calls.items() if count} == {
        "GET /lists/{listid}/customfields.json": 1,  # the mapped fields, before sending
        "GET /lists/{listid}/unsubscribed.json": 1,
        "GET /lists/{listid}/bounced.json": 1,
        "DELETE /subscribers/{listid}.json": 40,
    }
    states = SyncState.objects.filter(export=export, state=SyncState.State.OPTED_OUT)
    assert sorted(states.values_list("email", flat=True)) == sorted(unsubscribed + bounced)
    assert set(
        ConsentRecord.objects.filter(connection=cm_connection).values_list("email", "state")
    ) == {(email, "unsubscribed") for email in unsubscribed} | {
        (email, "bounced") for email in bounced
    }

    # Back in the segment: the one who bounced stays out, the one who only left comes back.
    ProfileFactory(customer_id="back1", email="person104@example.com")
    ProfileFactory(customer_id="back2", email="person105@example.com")
    segment_refresh(segment_id=people.pk)
    back = finished(services.run_request(export=export, user=alice))
    assert (back.added, back.failed) == (1, 0), worker.log()[-3000:]
    subscribers = cm_fake.state(list=list_id)["lists"][list_id]["subscribers"]
    assert subscribers["person104@example.com"]["State"] == "Deleted"
    assert subscribers["person105@example.com"]["State"] == "Active"


@pytest.mark.parametrize("kind", ["campaign_monitor", "autopilot"])
def test_a_list_deleted_at_the_service_fails_the_run_at_once_and_alerts_once(
    worker, cm_fake, autopilot_fake, cm_connection, autopilot_connection, people, alice, kind
):
    alice.email = "alice@example.com"
    alice.save()
    fake, connection, service, endpoint = {
        "campaign_monitor": (cm_fake, cm_connection, "Campaign Monitor", CM_IMPORTS),
        "autopilot": (autopilot_fake, autopilot_connection, "Autopilot", "POST /contacts"),
    }[kind]
    list_ids = (
        next(iter(fake.state()["clients"].values()))["list_ids"]
        if kind == "campaign_monitor"
        else list(fake.state()["accounts"][0]["lists"])
    )
    export = make_export(connection, list_ids[0], people, alice)
    fake.delete_list(list_ids[0])

    run = finished(services.run_request(export=export, user=alice))

    message = (
        f"{service} has no list with the ID {list_ids[0]}: it may have been deleted there. "
        "Edit the export and choose another list."
    )
    assert (run.status, shown(run.last_error)) == (Status.FAILED, message), worker.log()[-3000:]
    # At once: no batch after the first refusal (Campaign Monitor refuses the list before any
    # import, when the run reads its custom fields), and nothing retried.
    calls = fake.state(summary=True)["stats"]["requests_by_endpoint"].get(endpoint, 0)
    assert calls <= (0 if kind == "campaign_monitor" else 2)
    connection.refresh_from_db()
    assert connection.status == Connection.Status.HEALTHY
    mail = wait_until(worker.sent_mail, message="the alert")
    # A second alert, if there were one, would be queued or under way until the worker is idle.
    wait_until(worker.idle, message="the worker to finish every task")
    assert [item["Subject"] for item in worker.sent_mail()] == [
        f"Export “{export.display_name}” failed"
    ]
    assert message in mail[0].get_content()
    assert Alert.objects.filter(export=export).count() == 1

    page = Client()
    page.force_login(alice)
    assert message in page.get(reverse("exports:detail", args=[export.pk])).content.decode()

    # What the message says to do: choose another list, and the next run delivers.
    export.list_id = list_ids[1]
    export.save()
    again = finished(services.run_request(export=export, user=alice))
    assert (again.status, again.sent) == (Status.SUCCEEDED, 200), worker.log()[-3000:]
