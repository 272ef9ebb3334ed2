"""End to end with a real worker: exports to the Mailchimp fake, address by address."""

from __future__ import annotations

import pytest

from connections.models import Connection
from exports import services
from exports.models import Export, ExportRun, ExportRunFailure, SyncState
from fakes.testing import running_fake
from segments.models import Profile
from segments.services import segment_refresh
from tests.e2e.test_export_runs import EXPECTED, _connection, finished, make_export, people

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
Status = ExportRun.Status
KEY = "demo0mailchimp0key-us21"
__all__ = ["people"]  # the fixture, shared with the other end-to-end tests


@pytest.fixture(autouse=True)
def mc_fake(settings, monkeypatch):
    """Before the worker starts, so that its environment points at this fake."""
    with running_fake("mailchimp") as fake:
        settings.MAILCHIMP_API_URL = fake.base_url
        monkeypatch.setenv("MAILCHIMP_API_URL", fake.base_url)
        yield fake


@pytest.fixture
def mc_connection(alice):
    return _connection("mailchimp", {"api_key": KEY}, alice)


def audience_id(fake) -> str:
    return next(iter(fake.state(summary=True)["accounts"][0]["audiences"]))


def members(fake, audience: str) -> dict:
    return fake.state(list=audience)["accounts"][0]["audiences"][audience]["members"]


def subscribed(fake, audience: str, tag: str = "") -> set[str]:
    return {
        email
        for email, member in members(fake, audience).items()
        if member["status"] == "subscribed" and (not tag or tag in member["tags"])
    }


def batch_calls(fake) -> int:
    return fake.state(summary=True)["stats"]["requests_by_endpoint"].get("POST /lists/{list_id}", 0)


def test_every_profile_reaches_the_audience_with_its_merge_fields(
    worker, mc_fake, mc_connection, people, alice
):
    audience = audience_id(mc_fake)
    run = finished(
        services.run_request(export=make_export(mc_connection, audience, people, alice), user=alice)
    )
    assert (run.status, run.sent, run.failed) == (Status.SUCCEEDED, 200, 0), worker.log()[-3000:]
    assert subscribed(mc_fake, audience) == EXPECTED
    assert members(mc_fake, audience)["person5@example.com"]["merge_fields"] == {
        "FNAME": "Første5",
        "LNAME": "Ødegård",
    }


def test_mirror_to_a_tag_takes_it_off_leavers_and_an_unchanged_run_sends_nothing(
    worker, mc_fake, mc_connection, people, alice
):
    audience = audience_id(mc_fake)
    export = make_export(mc_connection, f"{audience}#Segment A", people, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    assert finished(services.run_request(export=export, user=alice)).added == 200
    assert subscribed(mc_fake, audience, "Segment A") == EXPECTED

    calls = batch_calls(mc_fake)
    unchanged = finished(services.run_request(export=export, user=alice))
    assert (unchanged.unchanged, unchanged.sent, batch_calls(mc_fake)) == (200, 0, calls)

    Profile.objects.filter(customer_id__in=["c010", "c011"]).delete()
    segment_refresh(segment_id=people.pk)
    third = finished(services.run_request(export=export, user=alice))
    assert third.removed == 2, worker.log()[-3000:]
    calls = mc_fake.state(summary=True)["stats"]["requests_by_endpoint"]
    # One call for both leavers, through the tag's static segment; none per person.
    assert calls.get("POST /lists/{list_id}/segments/{segment_id}") == 1
    assert not calls.get("POST /lists/{list_id}/members/{hash}/tags")
    leavers = {"person10@example.com", "person11@example.com"}
    assert subscribed(mc_fake, audience, "Segment A") == EXPECTED - leavers
    # Still in the audience, only without the tag: never deleted.
    assert subscribed(mc_fake, audience) == EXPECTED


def test_mirror_to_an_audience_archives_leavers_and_lets_them_back(
    worker, mc_fake, mc_connection, people, alice
):
    audience = audience_id(mc_fake)
    export = make_export(mc_connection, audience, people, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    finished(services.run_request(export=export, user=alice))
    Profile.objects.filter(customer_id="c010").delete()
    segment_refresh(segment_id=people.pk)
    assert finished(services.run_request(export=export, user=alice)).removed == 1
    assert members(mc_fake, audience)["person10@example.com"]["status"] == "archived"

    from tests.factories import ProfileFactory

    ProfileFactory(customer_id="back", email="person10@example.com")
    segment_refresh(segment_id=people.pk)
    back = finished(services.run_request(export=export, user=alice))
    assert (back.added, back.failed) == (1, 0), worker.log()[-3000:]
    assert subscribed(mc_fake, audience) == EXPECTED
    assert mc_fake.state(summary=True)["accounts"][0]["audiences"][audience]["forgotten"] == []


def test_unsubscribed_and_forgotten_people_are_opted_out_and_never_subscribed_again(
    worker, mc_fake, mc_connection, people, alice
):
    audience = audience_id(mc_fake)
    mc_fake.seed(
        accounts=[
            {
                "id": "demo",
                "audiences": [
                    {
                        "id": audience,
                        "members": [
                            {"email_address": "person3@example.com", "status": "unsubscribed"}
                        ],
                        "forgotten": ["person4@example.com"],
                    }
                ],
            }
        ]
    )
    export = make_export(mc_connection, audience, people, alice)
    run = finished(services.run_request(export=export, user=alice))
    assert (run.status, run.sent, run.failed) == (Status.COMPLETED_WITH_WARNINGS, 198, 2)
    codes = dict(
        ExportRunFailure.objects.filter(run=run, skipped=False).values_list("email", "code")
    )
    assert codes == {"person3@example.com": "compliance_state", "person4@example.com": "forgotten"}
    opted_out = SyncState.objects.filter(export=export, state=SyncState.State.OPTED_OUT)
    assert set(opted_out.values_list("email", flat=True)) == set(codes)
    assert members(mc_fake, audience)["person3@example.com"]["status"] == "unsubscribed"

    again = finished(services.run_request(export=export, user=alice))
    assert (again.sent, again.failed) == (0, 0)


@pytest.mark.parametrize(
    "faults",
    [
        {"burst_429": 6, "burst_429_headers": "none"},
        {"burst_429": 4, "burst_429_headers": "retry-after", "burst_429_reset": 1},
        {"error_next": 3, "error_status": 503},
        {"drop_next": 2},
        {"timeout_next": 1, "timeout_seconds": 3},
    ],
    ids=["429-storm", "429-with-retry-after", "5xx", "dropped", "timeout"],
)
def test_a_run_rides_out_the_faults_with_nobody_lost(
    worker, mc_fake, mc_connection, people, alice, faults, settings
):
    mc_fake.configure(**faults)
    audience = audience_id(mc_fake)
    run = finished(
        services.run_request(
            export=make_export(mc_connection, audience, people, alice), user=alice
        ),
        timeout=90,
    )
    assert (run.status, run.sent, run.failed) == (Status.SUCCEEDED, 200, 0), worker.log()[-3000:]
    assert subscribed(mc_fake, audience) == EXPECTED


def test_a_revoked_key_fails_the_run_and_asks_for_new_credentials(
    worker, mc_fake, mc_connection, people, alice
):
    mc_fake.revoke(api_key=KEY)
    audience = audience_id(mc_fake)
    run = finished(
        services.run_request(export=make_export(mc_connection, audience, people, alice), user=alice)
    )
    assert run.status == Status.FAILED
    mc_connection.refresh_from_db()
    assert mc_connection.status == Connection.Status.NEEDS_REAUTHENTICATION


def test_a_person_who_unsubscribed_is_not_subscribed_again_after_leaving_and_returning(
    worker, mc_fake, mc_connection, people, alice
):
    """Unsubscribed at Mailchimp, archived by a mirror run when they left the segment (Mailchimp
    allows that), back in the segment: they stay unsubscribed, skipped as opted out."""
    audience = audience_id(mc_fake)
    export = make_export(mc_connection, audience, people, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    finished(services.run_request(export=export, user=alice))
    mc_fake.seed(
        accounts=[
            {
                "id": "demo",
                "audiences": [
                    {
                        "id": audience,
                        "members": [
                            {"email_address": "person10@example.com", "status": "unsubscribed"}
                        ],
                    }
                ],
            }
        ]
    )
    Profile.objects.filter(customer_id="c010").delete()
    segment_refresh(segment_id=people.pk)
    left = finished(services.run_request(export=export, user=alice))
    assert (left.status, left.removed) == (Status.SUCCEEDED, 1), worker.log()[-3000:]
    assert members(mc_fake, audience)["person10@example.com"]["status"] == "archived"

    from tests.factories import ProfileFactory

    ProfileFactory(customer_id="back", email="person10@example.com")
    segment_refresh(segment_id=people.pk)
    back = finished(services.run_request(export=export, user=alice))
    assert (back.added, back.skipped, back.failed) == (0, left.skipped + 1, 0), worker.log()[-3000:]
    assert members(mc_fake, audience)["person10@example.com"]["status"] != "subscribed"
    assert subscribed(mc_fake, audience) == EXPECTED - {"person10@example.com"}
    skipped = ExportRunFailure.objects.get(run=back, skipped=True, email="person10@example.com")
    assert skipped.code == "opted_out"


def test_addresses_refused_as_fake_are_not_sent_again_until_their_data_changes(
    worker, mc_fake, mc_connection, people, alice
):
    from tests.factories import ProfileFactory

    audience = audience_id(mc_fake)
    for number in (1, 2):
        ProfileFactory(customer_id=f"fake{number}", email=f"someone{number}@mail.test")
    segment_refresh(segment_id=people.pk)
    export = make_export(mc_connection, audience, people, alice)
    first = finished(services.run_request(export=export, user=alice))
    assert (first.status, first.failed) == (Status.COMPLETED_WITH_WARNINGS, 2), worker.log()[-3000:]

    calls = batch_calls(mc_fake)
    again = finished(services.run_request(export=export, user=alice))
    assert batch_calls(mc_fake) == calls  # no batch for the two the service refused
    assert (again.status, again.sent, again.failed) == (Status.COMPLETED_WITH_WARNINGS, 0, 2)
    assert again.added + again.updated + again.unchanged + again.removed + again.skipped + 2 == (
        again.profiles_total + again.to_remove
    )
    reasons = dict(
        ExportRunFailure.objects.filter(run=again, skipped=False).values_list("email", "code")
    )
    assert reasons == {"someone1@mail.test": "invalid_email", "someone2@mail.test": "invalid_email"}

    retry = finished(services.run_request(export=export, user=alice, retry_of=again))
    assert (retry.to_send, retry.failed, batch_calls(mc_fake)) == (2, 2, calls + 1)
