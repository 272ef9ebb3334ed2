"""End to end (issue 26): a segment broken to select nobody makes a mirror export wait for
approval instead of deleting its list; Approve then removes them, Discard leaves the list."""

from __future__ import annotations

import pytest

from exports import services
from exports.models import Export, ExportRun, SyncState
from segments.services import segment_refresh
from tests.e2e.test_export_runs import cm_connection, cm_list_id, finished, make_export
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.guard, pytest.mark.django_db(transaction=True)]
Status = ExportRun.Status
PEOPLE = {f"person{number}@example.com" for number in range(30)}
__all__ = ["cm_connection"]  # the fixture, shared with the other end-to-end runs


def active(fake, list_id: str) -> set[str]:
    subscribers = fake.state(list=list_id)["lists"][list_id]["subscribers"]
    return {email for email, subscriber in subscribers.items() if subscriber["State"] == "Active"}


@pytest.fixture
def held(worker, cm_fake, cm_connection, alice):
    """A mirror export that put thirty people in its Campaign Monitor list, then ran again
    after its segment was broken to select nobody."""
    for number in range(30):
        ProfileFactory(customer_id=f"c{number:03d}", email=f"person{number}@example.com")
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "customer_id", "operator": "is_not_empty"}]}
    )
    segment_refresh(segment_id=segment.pk)
    list_id = cm_list_id(cm_fake)
    export = make_export(cm_connection, list_id, segment, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    first = finished(services.run_request(export=export, user=alice))
    assert (first.status, first.added) == (Status.SUCCEEDED, 30), worker.log()[-3000:]

    segment.rules = {
        "match": "all",
        "conditions": [{"field": "customer_id", "operator": "equals", "value": "nobody"}],
    }
    segment.save(update_fields=["rules"])
    segment_refresh(segment_id=segment.pk)
    run = finished(services.run_request(export=export, user=alice))
    return run, list_id


def test_a_broken_segment_waits_for_approval_and_approve_removes_them(held, cm_fake, alice, worker):
    run, list_id = held
    assert run.status == Status.AWAITING_APPROVAL, worker.log()[-3000:]
    assert (run.list_size, run.to_remove, run.list_size_after) == (30, 30, 0)
    assert active(cm_fake, list_id) == PEOPLE  # nothing was deleted

    services.run_approve(run=run, user=alice)
    run = finished(run)

    assert (run.status, run.removed) == (Status.SUCCEEDED, 30), worker.log()[-3000:]
    assert active(cm_fake, list_id) == set()
    assert not SyncState.objects.filter(export=run.export, state=SyncState.State.IN_LIST)


def test_discard_leaves_the_list_untouched(held, cm_fake, alice, worker):
    run, list_id = held
    assert run.status == Status.AWAITING_APPROVAL, worker.log()[-3000:]
    requests = cm_fake.state()["stats"]["requests_by_endpoint"]

    services.run_discard(run=run, user=alice)
    run.refresh_from_db()

    assert (run.status, run.removed, run.sent) == (Status.DISCARDED, 0, 0)
    assert active(cm_fake, list_id) == PEOPLE
    in_list = SyncState.objects.filter(export=run.export, state=SyncState.State.IN_LIST)
    assert set(in_list.values_list("email", flat=True)) == PEOPLE
    assert cm_fake.state()["stats"]["requests_by_endpoint"] == requests  # no call at all
