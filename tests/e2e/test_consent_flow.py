"""End to end with a real worker, the Campaign Monitor and the Mailchimp fakes (issue 26): a
person who unsubscribes in Mailchimp is read back on the next scheduled refresh, and from then
on no export on any connection sends them: the Campaign Monitor mirror export takes them off its
list, and Mailchimp never subscribes them again."""

from __future__ import annotations

import pytest

from connections.models import ConsentReadBack
from exports import services
from exports.models import Export, ExportRun, ExportRunFailure
from exports.recipients import EXCLUDED_CONSENT
from exports.schedule import run_refresh_chain
from segments.models import ConsentRecord
from tests.e2e.test_export_runs import (
    EXPECTED,
    cm_connection,
    cm_list_id,
    finished,
    make_export,
    people,
)
from tests.e2e.test_mailchimp_runs import audience_id, mc_connection, mc_fake, members

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
__all__ = ["cm_connection", "mc_connection", "mc_fake", "people"]  # fixtures

GONE = "person5@example.com"
BOUNCED = "person6@example.com"
COMPLAINER = "person8@example.com"


def active_in_cm(fake, list_id: str) -> set[str]:
    subscribers = fake.state(list=list_id)["lists"][list_id]["subscribers"]
    return {email.lower() for email, s in subscribers.items() if s["State"] == "Active"}


def subscribed_in_mailchimp(fake, audience: str) -> set[str]:
    return {e.lower() for e, m in members(fake, audience).items() if m["status"] == "subscribed"}


def latest_run(export: Export) -> ExportRun:
    return finished(ExportRun.objects.filter(export=export).order_by("-id").first())


def test_an_unsubscribe_in_mailchimp_keeps_the_person_out_of_every_export(
    worker, cm_fake, mc_fake, cm_connection, mc_connection, people, alice
):
    cm_list, audience = cm_list_id(cm_fake), audience_id(mc_fake)
    to_cm = make_export(cm_connection, cm_list, people, alice)
    to_mailchimp = make_export(mc_connection, audience, people, alice)
    Export.objects.filter(pk=to_cm.pk).update(sync_mode=Export.SyncMode.MIRROR)
    for export in (to_cm, to_mailchimp):
        assert finished(services.run_request(export=export, user=alice)).status == "succeeded"
    assert active_in_cm(cm_fake, cm_list) == EXPECTED
    assert subscribed_in_mailchimp(mc_fake, audience) == EXPECTED

    mc_fake.consent([GONE], "unsubscribed", list_id=audience)
    mc_fake.consent([BOUNCED], "cleaned", list_id=audience)
    Export.objects.update(schedule_enabled=True)
    outcome = run_refresh_chain()

    assert outcome["consent_reads_failed"] == 0, outcome
    assert ConsentReadBack.objects.get(connection=mc_connection).status == "succeeded"
    assert set(
        ConsentRecord.objects.filter(connection=mc_connection).values_list("email", "state")
    ) == {(GONE, "unsubscribed"), (BOUNCED, "cleaned")}

    cm_run = latest_run(to_cm)
    assert (cm_run.status, cm_run.excluded, cm_run.removed) == ("succeeded", 2, 2), cm_run
    assert active_in_cm(cm_fake, cm_list) == EXPECTED - {GONE, BOUNCED}
    listed = ExportRunFailure.objects.filter(run=cm_run, code=EXCLUDED_CONSENT)
    assert {email.lower() for email in listed.values_list("email", flat=True)} == {GONE, BOUNCED}

    mailchimp_run = latest_run(to_mailchimp)
    assert mailchimp_run.excluded == 2 and mailchimp_run.status == "succeeded"
    assert subscribed_in_mailchimp(mc_fake, audience) == EXPECTED - {GONE, BOUNCED}

    # A resend of everything, on demand, sends them nowhere either.
    services.export_request_resend(export=to_cm)
    again = services.run_request(export=to_cm, user=alice)
    assert finished(again).excluded == 2
    assert active_in_cm(cm_fake, cm_list) == EXPECTED - {GONE, BOUNCED}


def test_a_spam_complaint_about_a_campaign_monitor_campaign_keeps_the_person_out_of_mailchimp(
    worker, cm_fake, mc_fake, cm_connection, mc_connection, people, alice
):
    cm_list, audience = cm_list_id(cm_fake), audience_id(mc_fake)
    to_cm = make_export(cm_connection, cm_list, people, alice)
    to_mailchimp = make_export(mc_connection, audience, people, alice)
    for export in (to_cm, to_mailchimp):
        assert finished(services.run_request(export=export, user=alice)).status == "succeeded"

    cm_fake.consent([COMPLAINER], "complained", list_id=cm_list, campaign_id="spring-sale")
    Export.objects.update(schedule_enabled=True)
    outcome = run_refresh_chain()

    assert outcome["consent_reads_failed"] == 0, outcome
    complained = ConsentRecord.objects.filter(connection=cm_connection, state="complained")
    # From the campaign's complaints (with the list and the campaign), and from the client's
    # suppression list (account-wide, Campaign Monitor's own reason).
    assert set(complained.values_list("email", "list_id", "reason")) == {
        (COMPLAINER, cm_list, "Campaign 1"),
        (COMPLAINER, "", "Spam Complaint"),
    }
    mailchimp_run = latest_run(to_mailchimp)
    assert (mailchimp_run.status, mailchimp_run.excluded) == ("succeeded", 1), mailchimp_run
    listed = ExportRunFailure.objects.filter(run=mailchimp_run, code=EXCLUDED_CONSENT)
    assert [email.lower() for email in listed.values_list("email", flat=True)] == [COMPLAINER]
