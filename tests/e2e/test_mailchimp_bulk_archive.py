"""End to end with a real worker: a mirror run archives its leavers at the Mailchimp fake
through ``/batches`` (issue 22 item 5), a few calls instead of two per person, and still
learns who had unsubscribed before archiving them."""

from __future__ import annotations

import pytest

from exports import services
from exports.models import Export, ExportRun, SyncState
from segments.models import Profile
from segments.services import segment_refresh
from tests.e2e.test_export_runs import EXPECTED, finished, make_export, people
from tests.e2e.test_mailchimp_runs import audience_id, mc_connection, mc_fake, members

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
__all__ = ["mc_connection", "mc_fake", "people"]  # fixtures, shared with the other tests

LEAVERS = {f"person{number}@example.com" for number in range(10, 50)}


def test_forty_leavers_are_archived_in_two_batches_and_an_opt_out_is_kept(
    worker, mc_fake, mc_connection, people, alice
):
    audience = audience_id(mc_fake)
    export = make_export(mc_connection, audience, people, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    assert finished(services.run_request(export=export, user=alice)).added == 200
    # One leaver unsubscribed at Mailchimp meanwhile.
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
    before = mc_fake.state(summary=True)["stats"]["requests_by_endpoint"]
    Profile.objects.filter(customer_id__in=[f"c{n:03d}" for n in range(10, 50)]).delete()
    segment_refresh(segment_id=people.pk)

    run = finished(services.run_request(export=export, user=alice))

    assert (run.status, run.removed, run.unchanged) == (
        ExportRun.Status.SUCCEEDED,
        40,
        160,
    ), worker.log()[-3000:]
    state = members(mc_fake, audience)
    assert {email for email in LEAVERS if state[email]["status"] == "archived"} == LEAVERS
    assert {e for e, m in state.items() if m["status"] == "subscribed"} == EXPECTED - LEAVERS
    after = mc_fake.state(summary=True)["stats"]["requests_by_endpoint"]
    calls = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}
    # Two batches (statuses, then archives), each polled and its results read: no call per
    # person (80 before: a status read and an archive each).
    assert calls.get("POST /batches") == 2, calls
    assert not calls.get("DELETE /lists/{list_id}/members/{hash}")
    assert not calls.get("GET /lists/{list_id}/members/{hash}")
    assert sum(calls.values()) <= 8, calls
    # The opt-out was read before the archive hid it: never subscribed again by us.
    assert SyncState.objects.get(export=export, email="person10@example.com").state == (
        SyncState.State.OPTED_OUT
    )
