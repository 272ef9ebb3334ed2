"""Delta sync: what each run sends, updates, removes and leaves alone (issue 5)."""

from __future__ import annotations

import pytest
from django.db import connection

from exports import engine, recipients, runs, services
from exports.models import Export, ExportRun, ExportRunFailure, SyncState
from exports.recipients import MEMBERS_FROM, build_recipients
from segments.models import ConsentRecord, Profile
from segments.services import segment_refresh
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
Status = ExportRun.Status


@pytest.fixture(autouse=True)
def one_batch_at_a_time(settings):
    settings.EXPORT_CONCURRENCY = 1


def run_now(export, **fields) -> ExportRun:
    run = services.run_request(export=export)
    if fields:
        ExportRun.objects.filter(pk=run.pk).update(**fields)
    return engine.execute(run.pk)


def counts(run: ExportRun) -> dict[str, int]:
    return {
        name: getattr(run, name)
        for name in ("added", "updated", "unchanged", "removed", "skipped", "failed")
    }


@pytest.fixture
def five(everyone):
    return [
        ProfileFactory(email=f"p{number}@example.com", first_name=f"F{number}")
        for number in range(5)
    ]


def test_the_first_run_sends_all_and_the_second_sends_none(backend, make_export, everyone, five):
    export = make_export(everyone)
    first = run_now(export)
    assert counts(first) == {
        "added": 5,
        "updated": 0,
        "unchanged": 0,
        "removed": 0,
        "skipped": 0,
        "failed": 0,
    }
    calls = backend.calls

    second = run_now(export)
    assert (second.status, backend.calls) == (Status.SUCCEEDED, calls)
    assert counts(second) == {
        "added": 0,
        "updated": 0,
        "unchanged": 5,
        "removed": 0,
        "skipped": 0,
        "failed": 0,
    }
    assert second.percent == 100


def test_a_changed_name_is_sent_again_as_an_update(backend, make_export, everyone, five):
    export = make_export(everyone)
    run_now(export)
    five[2].first_name = "Changed"
    five[2].save()
    backend.pushed.clear()

    run = run_now(export)
    assert (run.updated, run.unchanged, backend.pushed) == (1, 4, ["p2@example.com"])
    assert backend.lists["list-1"]["p2@example.com"].first_name == "Changed"


@pytest.mark.parametrize(
    ("mode", "removed"),
    [(Export.SyncMode.MIRROR, ["p4@example.com"]), (Export.SyncMode.ADD_AND_UPDATE, [])],
)
def test_a_leaver_is_removed_in_mirror_mode_and_kept_otherwise(
    backend, make_export, everyone, five, mode, removed
):
    export = make_export(everyone, sync_mode=mode)
    run_now(export)
    five[4].delete()
    segment_refresh(segment_id=everyone.pk)

    run = run_now(export)
    assert (run.removed, backend.removed) == (len(removed), removed)
    assert ("p4@example.com" in backend.lists["list-1"]) is not bool(removed)
    state = SyncState.objects.get(export=export, email="p4@example.com").state
    assert state == ("removed" if removed else "in_list")


@pytest.mark.parametrize(("size", "calls"), [(1, 3), (2, 2), (3, 1)])
def test_removals_go_in_the_batch_size_the_destination_declares_one_token_a_call(
    backend, make_export, everyone, five, monkeypatch, size, calls
):
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    for profile in five[2:]:
        profile.delete()
    segment_refresh(segment_id=everyone.pk)
    monkeypatch.setattr(backend, "rate_limit", 5.0)
    monkeypatch.setattr(backend, "removal_batch_size", size)
    tokens = []
    monkeypatch.setattr(
        "exports.engine.RateLimiter.acquire", lambda limiter, **_kwargs: tokens.append(1)
    )
    backend.calls = 0

    run = run_now(export)

    assert run.removed == 3 and sorted(backend.removed) == sorted(p.email for p in five[2:])
    assert backend.calls == len(tokens) == calls


def test_a_removed_leaver_who_comes_back_is_added_again(backend, make_export, everyone, five):
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    email = five[4].email
    five[4].delete()
    segment_refresh(segment_id=everyone.pk)
    run_now(export)
    ProfileFactory(email=email)
    segment_refresh(segment_id=everyone.pk)
    backend.pushed.clear()

    run = run_now(export)
    assert (run.added, run.unchanged, backend.pushed) == (1, 4, [email])
    assert backend.lists["list-1"][email].returning
    assert SyncState.objects.get(export=export, email=email).state == "in_list"


def test_a_record_that_failed_is_sent_again_on_the_next_run(backend, make_export, everyone):
    profile = ProfileFactory(email="reject@example.com")
    ProfileFactory(email="ok@example.com")
    export = make_export(everyone)
    first = run_now(export)
    assert (first.added, first.failed) == (1, 1)
    assert not SyncState.objects.filter(email="reject@example.com").exists()

    profile.email = "accepted-now@example.com"
    profile.save()
    backend.pushed.clear()
    run_now(export)
    assert backend.pushed == ["accepted-now@example.com"]


def test_an_address_unsubscribed_at_the_service_is_not_retried_every_run(
    backend, make_export, everyone
):
    ProfileFactory(customer_id="gone", email="unsubscribed@example.com")
    ProfileFactory(email="ok@example.com")
    export = make_export(everyone)
    first = run_now(export)
    assert (first.failed, SyncState.objects.get(email="unsubscribed@example.com").state) == (
        1,
        "opted_out",
    )

    calls = backend.calls
    second = run_now(export)
    assert backend.calls == calls
    skipped = ExportRunFailure.objects.get(run=second)
    assert (skipped.customer_id, skipped.code, skipped.skipped) == ("gone", "opted_out", True)


def test_resend_everything_sends_unchanged_members_once_and_resets(
    backend, make_export, everyone, five
):
    export = make_export(everyone)
    run_now(export)
    Export.objects.filter(pk=export.pk).update(resend_next_run=True)
    backend.pushed.clear()

    run = run_now(Export.objects.get(pk=export.pk))
    assert (run.updated, len(backend.pushed)) == (5, 5)
    assert not Export.objects.get(pk=export.pk).resend_next_run


def test_retry_failed_records_sends_only_those(backend, make_export, everyone, five):
    ProfileFactory(email="reject-me@example.com")
    export = make_export(everyone)
    first = run_now(export)
    assert first.failed == 1
    backend.pushed.clear()

    retry = run_now(export, retry_of=first)
    assert backend.pushed == []  # still refused by the service, and nothing else was sent
    assert (retry.to_send, retry.failed, retry.unchanged) == (1, 1, 0)


def test_a_worker_lost_mid_run_leaves_only_acknowledged_records_in_the_sync_state(
    backend, make_export, everyone, five, settings
):
    export = make_export(everyone)
    run = services.run_request(export=export)

    def die_on_second_batch(recording):
        if recording.calls == 2:
            raise SystemExit

    backend.before_push = die_on_second_batch
    with pytest.raises(SystemExit):
        engine.execute(run.pk)
    confirmed = set(SyncState.objects.filter(export=export).values_list("email", flat=True))
    assert confirmed <= set(backend.lists["list-1"])  # nothing the service did not acknowledge

    backend.before_push = None
    settings.EXPORT_STALLED_AFTER_SECONDS = 0
    resumed = engine.execute(run.pk)
    confirmed = set(SyncState.objects.filter(export=export).values_list("email", flat=True))
    assert resumed.status == Status.SUCCEEDED
    assert confirmed == set(backend.lists["list-1"]) == {f"p{n}@example.com" for n in range(5)}


@pytest.mark.parametrize("mode", [Export.SyncMode.MIRROR, Export.SyncMode.ADD_AND_UPDATE])
def test_the_preview_matches_what_the_next_run_does_count_for_count(
    backend, make_export, everyone, five, mode
):
    ProfileFactory(email="")
    ProfileFactory(email="reject@example.com")
    export = make_export(everyone, sync_mode=mode)
    run_now(export)
    five[0].first_name = "Changed"
    five[0].save()
    five[1].delete()
    ProfileFactory(email="new@example.com")
    segment_refresh(segment_id=everyone.pk)
    calls = backend.calls

    preview = services.export_preview(export=export)
    assert backend.calls == calls  # nothing reached the service
    assert not ExportRun.objects.filter(status=Status.SKIPPED).exists()  # nothing kept
    run = run_now(export)
    assert {
        name: preview[name] for name in ("added", "updated", "removed", "unchanged", "skipped")
    } == {
        "added": run.added + run.failed,  # the refused address is attempted as an add again
        "updated": run.updated,
        "removed": run.removed,
        "unchanged": run.unchanged,
        "skipped": run.skipped,
    }
    assert [row["email"] for row in preview["samples"]["update"]] == ["p0@example.com"]


def test_the_preview_page_shows_what_the_next_run_would_do(
    as_bob, backend, make_export, everyone, five
):
    from django.urls import reverse

    export = make_export(everyone)
    page = as_bob.get(reverse("exports:preview", args=[export.pk])).content.decode()
    assert 'class="count-added">5<' in page
    assert "Nothing was sent to the service" in page
    assert backend.calls == 0


def test_resend_everything_and_retry_failed_records_are_buttons_away(
    as_bob, backend, make_export, everyone, five, bob
):
    from django.urls import reverse

    ProfileFactory(email="reject@example.com")
    export = make_export(everyone)
    export.connection.who_can_use = "administrators_and_contributors"
    export.connection.save()
    first = run_now(export)

    as_bob.post(reverse("exports:resend", args=[export.pk]))
    assert Export.objects.get(pk=export.pk).resend_next_run

    response = as_bob.post(reverse("exports:run_retry", args=[first.pk]))
    assert response.status_code == 302
    retry = ExportRun.objects.get(retry_of=first)
    assert (retry.status, retry.triggered_by) == (Status.QUEUED, bob)


def test_an_added_address_that_has_a_sync_state_after_all_is_updated_not_refused(
    make_export, everyone, five
):
    """Adds are recorded with a plain insert; should a state exist meanwhile (which one run
    per export at a time prevents), the upsert takes over instead of failing the run."""
    export = make_export(everyone)
    run = services.run_request(export=export)
    build_recipients(run)
    SyncState.objects.create(export=export, email="p0@example.com", fields_hash="stale")
    ExportRun.objects.filter(pk=run.pk).update(worker_token="token")

    recipients.write_sync_state(run, "token", 0, MEMBERS_FROM + five[-1].pk)

    states = SyncState.objects.filter(export=export)
    assert states.count() == 5
    assert states.get(email="p0@example.com").fields_hash != "stale"
    run.refresh_from_db()
    assert run.synced_up_to == MEMBERS_FROM + five[-1].pk


def test_a_resumed_mirror_run_carries_on_among_the_same_removals(
    backend, make_export, everyone, five, settings, monkeypatch
):
    """The sync state of removals acknowledged before the worker was lost may already say
    "removed"; the resumed run must not renumber the rest and skip some of them."""
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    for profile in five:
        profile.delete()
    segment_refresh(segment_id=everyone.pk)
    recording_remove = backend.remove

    def lost_at_the_second_batch(list_id, emails):
        if backend.removed:
            raise SystemExit  # the worker process is gone
        return recording_remove(list_id, emails)

    monkeypatch.setattr(backend, "remove", lost_at_the_second_batch)
    run = services.run_request(export=export)
    with pytest.raises(SystemExit):
        engine.execute(run.pk)
    run.refresh_from_db()
    assert (run.checkpoint, backend.removed) == (
        3,
        ["p0@example.com", "p1@example.com", "p2@example.com"],
    )
    # As the background sync-state writer would have recorded them.
    recipients.write_sync_state(run, run.worker_token, 0, run.checkpoint)

    monkeypatch.setattr(backend, "remove", recording_remove)
    settings.EXPORT_STALLED_AFTER_SECONDS = 0
    resumed = engine.execute(run.pk)

    assert (resumed.status, resumed.removed) == (Status.SUCCEEDED, 5)
    assert backend.removed == [f"p{number}@example.com" for number in range(5)]
    assert set(SyncState.objects.filter(export=export).values_list("state", flat=True)) == {
        "removed"
    }


def test_skips_for_the_data_alone_leave_a_run_successful_and_a_refusal_does_not(
    backend, make_export, everyone, five
):
    ProfileFactory(customer_id="none", email="")
    ProfileFactory(customer_id="bad", email="not-an-address")
    ProfileFactory(customer_id="dup", email="P1@example.com")
    ProfileFactory(customer_id="gone", email="unsubscribed@example.com")
    export = make_export(everyone)
    first = run_now(export)  # the service refuses the unsubscribed address: a warning
    assert (first.status, first.failed, first.skipped) == (Status.COMPLETED_WITH_WARNINGS, 1, 3)

    second = run_now(export)  # now it is skipped as opted out, like the data's own skips
    assert (second.status, second.failed, second.skipped) == (Status.SUCCEEDED, 0, 4)
    assert set(
        ExportRunFailure.objects.filter(run=second, skipped=True).values_list("code", flat=True)
    ) == {"missing_email", "invalid_email", "duplicate_email", "opted_out"}


def test_every_address_a_run_considers_is_in_exactly_one_count(
    backend, make_export, everyone, five
):
    ProfileFactory(email="leaver@example.com")
    ProfileFactory(customer_id="bad", email="not-an-address")
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    first = run_now(export)
    assert runs.unaccounted(first) == 0

    Profile.objects.filter(email="leaver@example.com").delete()
    five[0].first_name = "Changed"
    five[0].save()
    ProfileFactory(email="new@example.com")
    ProfileFactory(email="reject@example.com")
    segment_refresh(segment_id=everyone.pk)

    run = run_now(export)
    assert counts(run) == {
        "added": 1,
        "updated": 1,
        "unchanged": 4,
        "removed": 1,
        "skipped": 1,
        "failed": 1,
    }
    assert (run.profiles_total, run.to_remove, runs.unaccounted(run)) == (8, 1, 0)


def test_the_preview_page_heads_each_sample_by_what_the_run_would_do(
    as_bob, backend, make_export, everyone, five
):
    from django.urls import reverse

    export = make_export(everyone)
    page = as_bob.get(reverse("exports:preview", args=[export.pk])).content.decode()
    assert "Sample of additions" in page
    assert "Sample of updates" not in page and "Sample of removals" not in page
    assert "This export adds and updates only" in page


def test_the_preview_page_of_a_mirror_export_says_nothing_of_people_staying_in_the_list(
    as_bob, backend, make_export, everyone, five
):
    from django.urls import reverse

    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    page = as_bob.get(reverse("exports:preview", args=[export.pk])).content.decode()
    assert "This export adds and updates only" not in page


@pytest.fixture
def lasting(backend):
    """The service's "Invalid Email Address" (code 1) will not change by itself."""
    backend.lasting_refusal_codes = frozenset({"1"})
    return backend


def test_a_record_refused_for_good_is_not_sent_again_until_its_data_changes(
    lasting, make_export, everyone, five
):
    refused = ProfileFactory(customer_id="bad", email="reject-me@example.com", first_name="R")
    export = make_export(everyone)
    first = run_now(export)
    assert (first.status, first.failed, first.added) == (Status.COMPLETED_WITH_WARNINGS, 1, 5)

    calls = lasting.calls
    again = run_now(export)
    assert lasting.calls == calls  # nothing sent: the only change would be the refused record
    assert (again.status, again.to_send) == (Status.COMPLETED_WITH_WARNINGS, 0)
    assert counts(again) == {**counts(again), "unchanged": 5, "failed": 1, "added": 0}
    assert runs.unaccounted(again) == 0
    failure = ExportRunFailure.objects.get(run=again)
    assert (failure.customer_id, failure.email, failure.code, failure.skipped) == (
        "bad",
        "reject-me@example.com",
        "1",
        False,
    )
    assert failure.reason == "Invalid Email Address"

    refused.first_name = "Changed"
    refused.save()
    changed = run_now(export)
    assert (lasting.calls, changed.to_send, changed.failed) == (calls + 1, 1, 1)


def test_retry_failed_records_sends_a_record_refused_for_good_and_forgets_the_refusal(
    lasting, make_export, everyone, five
):
    ProfileFactory(email="reject-me@example.com")
    export = make_export(everyone)
    first = run_now(export)
    still = run_now(export)
    assert (still.failed, still.to_send) == (1, 0)

    lasting.refusing = False  # the address was fine after all (someone asked the service)
    retry = run_now(export, retry_of=still)
    assert (retry.to_send, retry.added, retry.failed) == (1, 1, 0)
    assert "reject-me@example.com" in lasting.pushed

    after = run_now(export)
    assert (after.failed, after.unchanged, after.to_send) == (0, 6, 0)
    assert first.failed == 1


def test_a_refusal_that_may_pass_by_itself_is_sent_every_run(backend, make_export, everyone):
    ProfileFactory(email="reject-me@example.com")
    export = make_export(everyone)
    run_now(export)
    calls = backend.calls
    again = run_now(export)
    assert (backend.calls, again.to_send, again.failed) == (calls + 1, 1, 1)


def test_a_mirror_run_removes_only_this_exports_addresses_in_the_list_that_no_member_has(
    backend, make_export, everyone, five
):
    """The leavers come out of the members' join with the sync state: another export's
    addresses, addresses no longer in the list and a member's address written differently
    are not removed, and leavers are counted as removals, not as members."""
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    other = make_export(everyone, display_name="Other", sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    in_list, removed = SyncState.State.IN_LIST, SyncState.State.REMOVED
    states = {
        "left@example.com": in_list,
        "opted@example.com": SyncState.State.OPTED_OUT,
        "gone@example.com": removed,
        "erased@example.com": SyncState.State.ERASING,
    }
    SyncState.objects.bulk_create(
        [SyncState(export=export, email=e, fields_hash="x", state=s) for e, s in states.items()]
        + [SyncState(export=other, email="others@example.com", fields_hash="x")]
    )
    five[0].email = "  P0@Example.COM "
    five[0].save()

    run = run_now(export)

    assert backend.removed == ["left@example.com"]
    assert (run.profiles_total, run.to_remove, run.removed, run.unchanged) == (5, 1, 1, 5)
    assert runs.unaccounted(run) == 0
    assert SyncState.objects.get(export=export, email="left@example.com").state == removed
    assert SyncState.objects.get(export=other, email="others@example.com").state == in_list


@pytest.mark.parametrize(
    ("mode", "to_remove"), [(Export.SyncMode.MIRROR, 1), (Export.SyncMode.ADD_AND_UPDATE, 0)]
)
def test_leavers_are_found_in_mirror_mode_only_and_are_never_members(
    make_export, everyone, five, mode, to_remove
):
    export = make_export(everyone, sync_mode=mode)
    SyncState.objects.create(export=export, email="left@example.com", fields_hash="x")
    run = services.run_request(export=export)

    built = build_recipients(run)

    assert (built.members, built.recipients, built.to_remove) == (5, 5, to_remove)
    table = recipients.RecipientTable(run)
    assert [row[1] for row in table.page(0, 10, removing=True)] == ["left@example.com"][:to_remove]
    assert len(table.page(0, 10)) == 5
    table.drop()


def test_an_export_that_maps_only_the_names_hashes_what_it_did_before_the_mapping(
    backend, make_export, everyone
):
    """Migrated exports send nothing again: the hash of the address and the names alone."""
    ProfileFactory(email="Ada@Example.com", first_name="Ada", last_name="Lovelace")
    ProfileFactory(email="grace@example.com", first_name="Grace", last_name="")
    export = make_export(everyone)
    run = services.run_request(export=export)
    build_recipients(run)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(*) FILTER (WHERE fields_hash = (hashtextextended("
            f"email || chr(31) || first_name || chr(31) || last_name, 0))::text)"
            f" FROM {recipients.RecipientTable(run).name} WHERE extras IS NULL"
        )
        members, same = cursor.fetchone()
    assert members == same > 0


def test_the_pages_index_serves_transactions_older_than_it(make_export, everyone):
    """Made before duplicates are marked in place: made after, PostgreSQL lets only
    transactions younger than the index use it, and while an older one runs anywhere every
    page of recipients reads and sorts the whole table."""
    ProfileFactory(email="dup@example.com")
    ProfileFactory(email="DUP@example.com")
    run = services.run_request(export=make_export(everyone))

    built = build_recipients(run)

    assert (built.recipients, built.skipped) == (1, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indcheckxmin FROM pg_index WHERE indexrelid = %s::regclass",
            [f"export_run_{run.pk}_recipients_position"],
        )
        assert cursor.fetchone() == (False,)


def _sync_states(export) -> set[tuple]:
    return set(
        SyncState.objects.filter(export=export).values_list(
            "email", "fields_hash", "state", "confirmed_by_id"
        )
    )


def test_a_first_runs_adds_are_copied_into_the_sync_state_as_the_insert_writes_them(
    backend, make_export, everyone, five, monkeypatch
):
    """The adds the engine counted go in by COPY at the end of the run; the sync state is
    what reading them from the run's table writes: refused and opted-out addresses left out
    or kept opted out, an address COPY must escape as it is."""
    ProfileFactory(email="reject@example.com")
    ProfileFactory(email="unsubscribed@example.com")
    ProfileFactory(email="back\\slash\ttab@example.com")  # trimmed of nothing: a tab inside
    ProfileFactory(email="back\\slash@example.com")
    copied_export = make_export(everyone)
    copied = run_now(copied_export)

    monkeypatch.setattr(engine, "acknowledged_adds", lambda run: None)
    ConsentRecord.objects.all().delete()  # the opt-out would keep the address out of this one
    read_export = make_export(everyone, display_name="Read from the table")
    read = run_now(read_export)

    assert (copied.added, copied.failed, copied.skipped) == (6, 2, 1)  # the tab: not valid
    assert (read.added, read.failed, read.skipped) == (6, 2, 1)
    as_copied = {(email, hash_, state) for email, hash_, state, _run in _sync_states(copied_export)}
    as_read = {(email, hash_, state) for email, hash_, state, _run in _sync_states(read_export)}
    assert as_copied == as_read
    assert {(email, state) for email, _hash, state in as_copied} == {
        *((f"p{number}@example.com", "in_list") for number in range(5)),
        ("back\\slash@example.com", "in_list"),
        ("unsubscribed@example.com", "opted_out"),
    }
    assert {run for *_values, run in _sync_states(copied_export)} == {copied.pk}


def test_copied_adds_that_have_a_sync_state_after_all_are_upserted(make_export, everyone, five):
    export = make_export(everyone)
    run = services.run_request(export=export)
    build_recipients(run)
    SyncState.objects.create(export=export, email="p0@example.com", fields_hash="stale")
    ExportRun.objects.filter(pk=run.pk).update(worker_token="token")
    rows = recipients.RecipientTable(run).page(0, 10)
    adds = recipients.AcknowledgedAdds(0)
    adds.record(rows, set())

    recipients.write_sync_state(run, "token", 0, rows[-1][0], adds)

    states = SyncState.objects.filter(export=export)
    assert states.count() == 5
    assert states.get(email="p0@example.com").fields_hash == rows[0][6]


def test_acknowledged_adds_give_up_at_the_first_row_that_is_no_add():
    adds = recipients.AcknowledgedAdds(0)
    adds.record([(1, "a@example.com", "", "", "", "add", "1", None)], set())
    assert adds.covers(0)
    adds.record([(2, "b@example.com", "", "", "", "update", "2", None)], set())
    assert not adds.covers(0)

    taken = adds.take(2)
    assert (taken.covers(0), adds.covers(2), adds.lines) == (False, True, [])


def test_acknowledged_adds_are_due_for_a_write_once_they_are_many(monkeypatch):
    monkeypatch.setattr(recipients.AcknowledgedAdds, "WRITE_AT", 2)
    adds = recipients.AcknowledgedAdds(0)
    adds.record([(1, "a@example.com", "", "", "", "add", "1", None)], set())
    assert not adds.due
    adds.record([(2, "b@example.com", "", "", "", "add", "2", None)], set())
    assert adds.due
