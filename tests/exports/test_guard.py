"""The pre-flight guard (issue 26): a run that would remove or add far more than usual stops as
Awaiting approval; Approve sends exactly what it computed, Discard sends nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import AuditEntry
from config.translation import shown
from connections.models import Connection
from exports import engine, guard, runs, schedule, selectors, services, signals
from exports.models import Export, ExportRun, GuardDefaults, SyncState
from exports.recipients import RecipientTable
from segments.models import ConsentRecord
from segments.services import segment_refresh
from tests.factories import ProfileFactory
from webhooks import events

pytestmark = [pytest.mark.django_db, pytest.mark.guard]
Status = ExportRun.Status
DEFAULTS = guard.Thresholds(max_removal_percent=10, max_removals=5000, max_add_factor=10)
NOBODY = {
    "match": "all",
    "conditions": [{"field": "customer_id", "operator": "equals", "value": "-"}],
}


def run_now(export, user=None) -> ExportRun:
    run = services.run_request(export=export, user=user)
    with TestCase.captureOnCommitCallbacks(execute=True):
        engine.execute(run.pk)
    run.refresh_from_db()
    return run


def in_list(export) -> set[str]:
    return set(
        SyncState.objects.filter(export=export, state=SyncState.State.IN_LIST).values_list(
            "email", flat=True
        )
    )


def break_segment(segment) -> None:
    """A rule broken to select nobody."""
    segment.rules = NOBODY
    segment.save(update_fields=["rules"])
    segment_refresh(segment_id=segment.pk)


@pytest.fixture
def twenty(everyone):
    return [ProfileFactory(email=f"p{number:02d}@example.com") for number in range(20)]


@pytest.fixture
def mirror(make_export, everyone, twenty, backend):
    """A mirror export whose first run put twenty people in the list."""
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    assert run_now(export).status == Status.SUCCEEDED
    return export


@pytest.fixture
def held(mirror, everyone, alice):
    """The mirror export's run after its segment was broken: it would remove everyone."""
    alice.email = "alice@example.com"
    alice.save(update_fields=["email"])
    break_segment(everyone)
    return run_now(mirror)


# The thresholds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("list_size", "adds", "removals", "holds"),
    [
        (100, 0, 10, False),  # 10 % is not more than 10 %
        (100, 0, 11, True),
        (100_000, 0, 5_000, False),  # 5 % of the list, and not more than 5,000
        (100_000, 0, 5_001, True),
        (10, 100, 0, False),  # ten times the list is not more than ten times
        (10, 101, 0, True),
        (0, 1_000_000, 0, False),  # a first run never stops for its adds
    ],
)
def test_the_thresholds_stop_a_run_only_past_them(list_size, adds, removals, holds):
    verdict = guard.judge(list_size=list_size, adds=adds, removals=removals, thresholds=DEFAULTS)
    assert verdict.holds is holds
    assert verdict.size_after == list_size + adds - removals


def test_every_threshold_passed_is_a_reason_in_words():
    verdict = guard.judge(list_size=100, adds=1001, removals=6000, thresholds=DEFAULTS)
    reasons = [str(reason) for reason in verdict.reasons]
    assert len(reasons) == 3
    assert "It would remove 6,000 addresses, more than 10% of the 100 in the list." in reasons
    assert "more than the 5,000 allowed without approval" in reasons[1]
    assert "It would add 1,001 addresses, more than 10 times the 100 in the list." in reasons[2]


def test_an_exports_own_thresholds_replace_the_defaults_one_by_one(make_export, everyone):
    export = make_export(everyone, guard_max_removals=7)
    defaults = GuardDefaults.load()
    defaults.max_add_factor = 3
    defaults.save()
    assert guard.thresholds_for(export) == guard.Thresholds(
        max_removal_percent=10, max_removals=7, max_add_factor=3
    )


# Runs ----------------------------------------------------------------------------------------


def test_a_first_run_never_stops_for_what_it_adds(mirror):
    first = mirror.runs.get()
    assert (first.status, first.list_size, first.to_add, first.added) == (
        Status.SUCCEEDED,
        0,
        20,
        20,
    )
    assert first.list_size_after == 20


def test_a_broken_segment_makes_a_mirror_run_wait_instead_of_emptying_the_list(
    held, mirror, backend
):
    assert held.status == Status.AWAITING_APPROVAL
    assert (held.list_size, held.to_add, held.to_remove, held.list_size_after) == (20, 0, 20, 0)
    assert held.recipients_ready and held.finished_at is None
    assert backend.removed == []
    assert len(in_list(mirror)) == 20
    assert RecipientTable(held).exists()
    assert "more than 10% of the 20 in the list" in guard.shown_reasons(held.held_because)[0]


def test_approve_sends_what_was_computed_and_the_run_completes(held, mirror, backend, alice):
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.run_approve(run=held, user=alice)
    held.refresh_from_db()

    assert held.status == Status.SUCCEEDED
    assert (held.removed, held.added, held.sent, runs.unaccounted(held)) == (20, 0, 0, 0)
    assert sorted(backend.removed) == [f"p{number:02d}@example.com" for number in range(20)]
    assert in_list(mirror) == set()
    assert (held.approved, held.decided_by, held.decided_at is not None) == (True, alice, True)
    assert not RecipientTable(held).exists()


def test_an_approved_run_announces_its_end_as_any_run_and_nothing_else(held, alice, backend):
    announced: list[tuple[str, int]] = []

    def finished(sender, *, run_id, **kwargs):
        announced.append(("finished", run_id))

    def discarded(sender, *, run_id, **kwargs):
        announced.append(("discarded", run_id))

    signals.export_run_finished.connect(finished)
    signals.export_run_discarded.connect(discarded)
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            services.run_approve(run=held, user=alice)
    finally:
        signals.export_run_finished.disconnect(finished)
        signals.export_run_discarded.disconnect(discarded)

    assert announced == [("finished", held.pk)]
    assert events.export_run_finished(held.pk)["run"]["status"] == Status.SUCCEEDED


def test_an_approved_run_does_not_stop_at_the_guard_again(held, alice, backend):
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.run_approve(run=held, user=alice)
    held.refresh_from_db()
    assert held.status == Status.SUCCEEDED
    assert AuditEntry.objects.filter(action=AuditAction.RUN_HELD).count() == 1


def test_discard_sends_nothing_and_leaves_the_sync_state_as_it_was(held, mirror, backend, alice):
    before = list(
        SyncState.objects.filter(export=mirror).values_list("email", "state", "fields_hash")
    )

    with TestCase.captureOnCommitCallbacks(execute=True):
        services.run_discard(run=held, user=alice)
    held.refresh_from_db()

    assert held.status == Status.DISCARDED
    assert held.finished_at is not None and held.decided_by == alice and not held.approved
    assert backend.removed == [] and (held.removed, held.sent) == (0, 0)
    after = list(
        SyncState.objects.filter(export=mirror).values_list("email", "state", "fields_hash")
    )
    assert after == before
    assert not RecipientTable(held).exists()


def test_no_second_run_starts_while_one_waits(held, mirror, alice):
    with pytest.raises(services.ExportAlreadyRunning) as refusal:
        services.export_run_now(export=mirror, user=alice)
    assert f"waiting for approval of run #{held.pk}" in str(refusal.value)
    assert mirror.runs.count() == 2


def test_a_scheduled_refresh_records_the_export_as_skipped_with_the_reason(held, mirror):
    result = schedule.run_refresh_chain()

    assert (result["exports_queued"], result["exports_skipped"]) == (0, 1)
    skipped = mirror.runs.filter(status=Status.SKIPPED).get()
    assert f"waiting for approval of run #{held.pk}" in shown(skipped.last_error)
    held.refresh_from_db()
    assert held.status == Status.AWAITING_APPROVAL
    assert selectors.run_awaiting_approval(mirror) == held


def test_the_exports_list_shows_the_waiting_run_even_after_a_skipped_one(held, mirror):
    schedule.run_refresh_chain()
    annotated = selectors.exports_annotated().get(pk=mirror.pk)
    assert annotated.last_status == Status.AWAITING_APPROVAL
    assert selectors.status_label(annotated.last_status) == "Awaiting approval"


def test_per_export_thresholds_let_a_run_through_that_the_defaults_stop(mirror, everyone, backend):
    Export.objects.filter(pk=mirror.pk).update(
        guard_max_removal_percent=100, guard_max_removals=1000
    )
    break_segment(everyone)
    run = run_now(Export.objects.get(pk=mirror.pk))
    assert (run.status, run.removed) == (Status.SUCCEEDED, 20)


def test_per_export_thresholds_stop_a_run_that_the_defaults_let_through(
    make_export, everyone, backend
):
    ProfileFactory(email="a@example.com")
    export = make_export(everyone, guard_max_add_factor=2)
    run_now(export)
    ProfileFactory.create_batch(3)
    segment_refresh(segment_id=everyone.pk)

    run = run_now(export)

    assert (run.status, run.list_size, run.to_add) == (Status.AWAITING_APPROVAL, 1, 3)
    assert "more than 2 times the 1 in the list" in guard.shown_reasons(run.held_because)[0]


def test_illegal_moves_are_refused(held, mirror, alice):
    with pytest.raises(runs.IllegalTransition):
        runs.transition(held, Status.SUCCEEDED)
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.run_discard(run=held, user=alice)
    with pytest.raises(services.RunNotAwaitingApproval):
        services.run_approve(run=held, user=alice)
    with pytest.raises(services.RunNotAwaitingApproval):
        services.run_discard(run=held, user=alice)
    done = mirror.runs.filter(status=Status.SUCCEEDED).get()
    with pytest.raises(services.RunNotAwaitingApproval) as refusal:
        services.run_approve(run=done, user=alice)
    assert "does not await approval" in str(refusal.value)


def test_the_hold_and_the_decision_are_audited_with_the_approver(held, mirror, alice):
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.run_approve(run=held, user=alice)
    stopped = AuditEntry.objects.get(action=AuditAction.RUN_HELD)
    assert stopped.after["removals"] == 20 and stopped.after["list_size"] == 20
    approved = AuditEntry.objects.get(action=AuditAction.RUN_APPROVED)
    assert (approved.actor, approved.object_id) == (alice, str(mirror.pk))
    assert approved.after == {
        "run": held.pk,
        "list_size": 20,
        "adds": 0,
        "removals": 20,
        "list_size_after": 0,
        "decision": "approved",
    }


def test_a_discard_is_audited_with_who_decided(held, bob):
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.run_discard(run=held, user=bob)
    entry = AuditEntry.objects.get(action=AuditAction.RUN_DISCARDED)
    assert (entry.actor, entry.after["decision"]) == (bob, "discarded")


def test_a_waiting_run_is_left_alone_by_the_stalled_run_sweeper(held):
    ExportRun.objects.filter(pk=held.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(days=3),
        created_at=timezone.now() - dt.timedelta(days=3),
    )
    assert services.runs_resume_stalled() == 0
    held.refresh_from_db()
    assert held.status == Status.AWAITING_APPROVAL
    assert RecipientTable(held).exists()  # its tables are not orphans


def test_cancel_on_the_export_discards_a_waiting_run(held, mirror, alice):
    with TestCase.captureOnCommitCallbacks(execute=True):
        cancelled = services.export_cancel(export=mirror, user=alice)
    assert cancelled.pk == held.pk
    held.refresh_from_db()
    assert held.status == Status.DISCARDED


# The owner's e-mail -----------------------------------------------------------------------------


def test_the_owner_is_told_by_email_with_the_numbers_and_the_link(held, settings):
    (message,) = [m for m in mail.outbox if "waits for your approval" in m.subject]
    assert message.to == ["alice@example.com"]
    assert message.subject == "Export “Newsletter” waits for your approval"
    assert "Addresses in the list now: 20" in message.body
    assert "To remove: 20" in message.body
    assert "In the list after the run: 0" in message.body
    assert settings.SITE_URL.rstrip("/") + reverse("exports:run_detail", args=[held.pk]) in (
        message.body
    )


# The pages ----------------------------------------------------------------------------------------


def test_the_run_page_shows_the_numbers_a_sample_and_what_each_button_does(held, as_alice):
    page = as_alice.get(reverse("exports:run_detail", args=[held.pk])).content.decode()
    assert "This run awaits approval" in page
    assert 'class="guard-list-size">20<' in page and 'class="guard-removals">20<' in page
    assert 'class="guard-list-size-after">0<' in page
    assert "p00@example.com" in page and "p19@example.com" in page
    assert 'id="approve-run"' in page and 'id="discard-run"' in page
    assert "Sends the adds and removals counted above" in page
    assert "Ends the run without sending anything" in page
    assert '<span class="badge awaiting_approval"' in page


def test_the_sample_is_bounded(held):
    assert len(selectors.run_guard(held)["sample"]) <= guard.SAMPLE_SIZE
    ExportRun.objects.filter(pk=held.pk).update(to_remove=25)
    held.refresh_from_db()
    assert selectors.run_guard(held)["more"] == 5


def test_a_viewer_sees_the_numbers_but_may_not_approve_or_discard(held, as_charlie, backend):
    page = as_charlie.get(reverse("exports:run_detail", args=[held.pk])).content.decode()
    assert "This run awaits approval" in page and 'id="approve-run"' not in page
    assert as_charlie.post(reverse("exports:run_approve", args=[held.pk])).status_code == 403
    assert as_charlie.post(reverse("exports:run_discard", args=[held.pk])).status_code == 403
    held.refresh_from_db()
    assert held.status == Status.AWAITING_APPROVAL


def test_a_contributor_on_a_shared_connection_approves_from_the_page(
    held, as_bob, connection, backend
):
    Connection.objects.filter(pk=connection.pk).update(
        who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = as_bob.post(reverse("exports:run_approve", args=[held.pk]))
    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.status, held.removed) == (Status.SUCCEEDED, 20)


def test_discarding_from_the_page_says_nothing_was_sent(held, as_alice):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = as_alice.post(reverse("exports:run_discard", args=[held.pk]), follow=True)
    assert "it sent nothing, and the list is as it was" in response.content.decode()
    page = as_alice.get(reverse("exports:run_detail", args=[held.pk])).content.decode()
    assert "Discarded by alice" in page


def test_the_run_button_says_the_export_waits(held, mirror, as_alice):
    page = as_alice.get(reverse("exports:detail", args=[mirror.pk])).content.decode()
    assert f"Waiting for approval of run #{held.pk}" in page


def test_preview_shows_the_lists_size_now_and_after_and_that_the_run_would_stop(
    mirror, everyone, as_alice
):
    break_segment(everyone)
    page = as_alice.get(reverse("exports:preview", args=[mirror.pk])).content.decode()
    assert 'class="list-size">20<' in page and 'class="list-size-after">0<' in page
    assert "The next run would stop before sending anything and wait for approval" in page
    assert "bills by the contacts" not in page  # Autopilot does not


def test_the_service_says_whether_it_bills_by_contacts(mirror, connection):
    assert selectors.bills_by_contacts(mirror) is False
    Connection.objects.filter(pk=connection.pk).update(kind="mailchimp")
    mirror.refresh_from_db()
    assert selectors.bills_by_contacts(mirror) is True


# Admin > System > Safety ---------------------------------------------------------------------


def test_an_administrator_changes_the_defaults_and_it_is_audited(as_alice, alice):
    response = as_alice.post(
        reverse("system:safety"),
        {"max_removal_percent": "25", "max_removals": "800", "max_add_factor": "4"},
    )
    assert response.status_code == 302
    defaults = GuardDefaults.load()
    assert (defaults.max_removal_percent, defaults.max_removals, defaults.max_add_factor) == (
        25,
        800,
        4,
    )
    entry = AuditEntry.objects.get(action=AuditAction.GUARD_DEFAULTS_UPDATED)
    assert entry.actor == alice
    assert entry.before["max_removals"] == 5000 and entry.after["max_removals"] == 800


def test_the_defaults_refuse_a_share_over_100_in_words(as_alice):
    response = as_alice.post(
        reverse("system:safety"),
        {"max_removal_percent": "150", "max_removals": "800", "max_add_factor": "0"},
    )
    page = response.content.decode()
    assert "Give a percentage from 0 to 100." in page
    assert "Give a factor from 1 to 1,000." in page
    assert GuardDefaults.load().max_removal_percent == 10


def test_others_read_the_defaults_but_may_not_change_them(as_bob):
    page = as_bob.get(reverse("system:safety")).content.decode()
    assert "Only administrators can change the safety thresholds" in page
    response = as_bob.post(
        reverse("system:safety"),
        {"max_removal_percent": "100", "max_removals": "9", "max_add_factor": "9"},
    )
    assert response.status_code == 403
    assert GuardDefaults.load().max_removal_percent == 10


def test_the_export_form_takes_thresholds_and_says_what_is_wrong(as_alice, mirror):
    page = as_alice.get(reverse("exports:edit", args=[mirror.pk])).content.decode()
    assert 'name="guard_max_removal_percent"' in page
    assert "Leave a box blank to use the default of Admin > System > Safety" in page


def test_the_notice_does_not_hold_back_the_days_failure_alert(held, alice):
    from exports import alerts
    from exports.models import Alert

    failed = ExportRun.objects.create(
        export=held.export, trigger="schedule", status=Status.FAILED, finished_at=timezone.now()
    )
    alerts.run_finished(failed.pk)
    kinds = sorted(Alert.objects.filter(export=held.export).values_list("kind", flat=True))
    assert kinds == [Alert.Kind.RUN_AWAITING_APPROVAL, Alert.Kind.RUN_FAILED]


def test_the_exports_list_says_awaiting_approval_and_offers_the_review(held, mirror, as_alice):
    page = as_alice.get(reverse("exports:list")).content.decode()
    assert '<span class="badge awaiting_approval">Awaiting approval</span>' in page
    assert "Review the run" in page


def test_an_approved_run_whose_tables_were_lost_computes_again_and_waits_again(
    held, alice, backend, monkeypatch
):
    monkeypatch.setattr("exports.services._enqueue", lambda run_id: None)
    services.run_approve(run=held, user=alice)
    RecipientTable(held).drop()  # as a database lost before the worker took the run

    engine.execute(held.pk)
    held.refresh_from_db()

    assert (held.status, held.approved, held.to_remove) == (Status.AWAITING_APPROVAL, False, 20)
    assert backend.removed == []


def test_a_person_who_unsubscribed_while_the_run_waited_is_not_sent_after_approval(
    mirror, everyone, backend, alice, connection
):
    """Approve computes again when what the run was computed from changed: consent holds on
    every path, however long a run waited."""
    newcomers = [ProfileFactory(email=f"new{number:03d}@example.com") for number in range(201)]
    segment_refresh(segment_id=everyone.pk)
    run = run_now(mirror)  # 201 adds to a list of 20: more than ten times its size
    assert (run.status, run.to_add) == (Status.AWAITING_APPROVAL, 201)
    ConsentRecord.objects.create(
        email=newcomers[0].email, state="unsubscribed", connection=connection
    )

    with TestCase.captureOnCommitCallbacks(execute=True):
        services.run_approve(run=run, user=alice)
    run.refresh_from_db()

    assert run.status == Status.SUCCEEDED
    assert newcomers[0].email not in backend.pushed
    assert (run.added, run.excluded, runs.unaccounted(run)) == (200, 1, 0)


def test_an_approved_run_that_would_now_do_more_waits_again(mirror, everyone, alice, backend):
    ProfileFactory.create_batch(201)
    segment_refresh(segment_id=everyone.pk)
    run = run_now(mirror)
    assert run.status == Status.AWAITING_APPROVAL
    ProfileFactory.create_batch(50)
    segment_refresh(segment_id=everyone.pk)
    pushed_before = len(backend.pushed)

    with TestCase.captureOnCommitCallbacks(execute=True):
        services.run_approve(run=run, user=alice)
    run.refresh_from_db()

    assert (run.status, run.to_add, run.approved) == (Status.AWAITING_APPROVAL, 251, False)
    assert "more than what was approved" in " ".join(guard.shown_reasons(run.held_because))
    assert len(backend.pushed) == pushed_before
