"""End to end with a real worker and the Mailchimp fake: exclusions (Admin > Exclusions, issue
24) are never sent in add-and-update mode, and a mirror export takes them off its audience."""

from __future__ import annotations

import pytest

from core.consent import ConsentState
from exports import exclusions, services
from exports.models import Exclusion, Export, ExportRun, ExportRunFailure
from segments.models import ConsentRecord
from segments.services import segment_refresh
from tests.e2e.test_export_runs import EXPECTED, finished, make_export, people
from tests.e2e.test_mailchimp_runs import audience_id, mc_connection, mc_fake, members
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
__all__ = ["mc_connection", "mc_fake", "people"]  # fixtures, shared with the other tests

STAFF = {"person19@example.com"} | {f"person{n}@example.com" for n in range(190, 200)}
EXCLUDED = STAFF | {"person1@example.com", "ann@blocked.example"}


@pytest.fixture
def excluded(people):
    ProfileFactory(customer_id="blocked", email="Ann@Blocked.example")
    segment_refresh(segment_id=people.pk)
    staff = SegmentFactory(
        name="Staff",
        rules={
            "match": "all",
            "conditions": [{"field": "email", "operator": "starts_with", "value": "person19"}],
        },
    )
    segment_refresh(segment_id=staff.pk)

    def exclude():
        exclusions.exclusions_add(kind=Exclusion.Kind.ADDRESS, values=["person1@example.com"])
        exclusions.exclusions_add(kind=Exclusion.Kind.DOMAIN, values=["blocked.example"])
        exclusions.exclusion_add_segment(segment=staff)

    return exclude


def in_audience(fake, audience) -> set[str]:
    return {email for email, m in members(fake, audience).items() if m["status"] == "subscribed"}


def test_an_add_and_update_export_never_sends_excluded_people(
    worker, mc_fake, mc_connection, people, excluded, alice
):
    excluded()
    audience = audience_id(mc_fake)
    run = finished(
        services.run_request(export=make_export(mc_connection, audience, people, alice), user=alice)
    )
    assert (run.status, run.added, run.excluded, run.skipped) == (
        ExportRun.Status.SUCCEEDED,
        200 - 12,
        13,
        3,
    ), worker.log()[-3000:]
    assert in_audience(mc_fake, audience) == EXPECTED - EXCLUDED
    listed = ExportRunFailure.objects.filter(run=run, code__startswith="excluded_")
    assert {email.lower() for email in listed.values_list("email", flat=True)} == EXCLUDED


def test_a_mirror_export_takes_excluded_people_off_its_audience(
    worker, mc_fake, mc_connection, people, excluded, alice
):
    audience = audience_id(mc_fake)
    export = make_export(mc_connection, audience, people, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    assert finished(services.run_request(export=export, user=alice)).added == 201
    excluded()

    run = finished(services.run_request(export=export, user=alice))

    assert (run.status, run.removed, run.excluded, run.unchanged) == (
        ExportRun.Status.SUCCEEDED,
        13,
        13,
        188,
    ), worker.log()[-3000:]
    state = members(mc_fake, audience)
    assert {email for email in EXCLUDED if state[email]["status"] == "archived"} == EXCLUDED
    assert in_audience(mc_fake, audience) == EXPECTED - EXCLUDED


def test_a_mirror_export_takes_people_with_a_consent_record_off_its_audience(
    worker, mc_fake, mc_connection, people, alice
):
    """Issue 26: a person who unsubscribed or bounced at another connection (here, one since
    deleted) is taken off the audience and counted as excluded; the others stay."""
    audience = audience_id(mc_fake)
    export = make_export(mc_connection, audience, people, alice)
    export.sync_mode = Export.SyncMode.MIRROR
    export.save()
    assert finished(services.run_request(export=export, user=alice)).added == 200
    gone = {"person3@example.com", "person4@example.com"}
    for email, state in zip(sorted(gone), ConsentState.values, strict=False):
        ConsentRecord.objects.create(email=email, state=state, connection_name="Gone")

    run = finished(services.run_request(export=export, user=alice))

    assert (run.status, run.removed, run.excluded) == (
        ExportRun.Status.SUCCEEDED,
        2,
        2,
    ), worker.log()[-3000:]
    state = members(mc_fake, audience)
    assert {email for email in gone if state[email]["status"] == "archived"} == gone
    assert in_audience(mc_fake, audience) == EXPECTED - gone
