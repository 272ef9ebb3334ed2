"""Consent records in the runs (issue 26): a person who unsubscribed or bounced at a connection
is never sent again (at any connection, or at that one, by the rule of Admin > Exclusions),
listed with the reason and counted as excluded; a mirror export removes them; and what a run
finds opted out at the service becomes a consent record itself."""

from __future__ import annotations

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.models import Connection
from connections.types.base import PushResult
from core.consent import ConsentState
from exports import consent, engine, exclusions, runs, services
from exports.models import ConsentRule, Exclusion, Export, ExportRun, ExportRunFailure, SyncState
from exports.recipients import EXCLUDED_ADDRESS, EXCLUDED_CONSENT, SKIP_OPTED_OUT
from segments.models import ConsentRecord
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
Status = ExportRun.Status
SAME_CONNECTION = ConsentRule.Scope.SAME_CONNECTION


@pytest.fixture(autouse=True)
def one_batch_at_a_time(settings):
    settings.EXPORT_CONCURRENCY = 1


@pytest.fixture
def people(everyone):
    return {
        name: ProfileFactory(email=email, first_name=name.title())
        for name, email in [
            ("ann", "ann@example.com"),
            ("bob", "  Bob@Example.com "),
            ("cat", "cat@example.com"),
            ("dan", "dan@example.com"),
        ]
    }


@pytest.fixture
def other_connection(alice):
    return Connection.objects.create(
        kind="autopilot",
        display_name="Other Autopilot",
        consent_given_by=alice,
        consent_given_at=timezone.now(),
        created_by=alice,
    )


def run_now(export, **fields) -> ExportRun:
    run = services.run_request(export=export)
    if fields:
        ExportRun.objects.filter(pk=run.pk).update(**fields)
    return engine.execute(run.pk)


def record(email, connection, state=ConsentState.UNSUBSCRIBED, list_id="") -> ConsentRecord:
    return ConsentRecord.objects.create(
        email=email,
        state=state,
        connection=connection,
        connection_name=connection.display_name if connection else "Deleted",
        list_id=list_id,
    )


def listed(run) -> dict[str, str]:
    return dict(ExportRunFailure.objects.filter(run=run, skipped=True).values_list("email", "code"))


@pytest.mark.parametrize("mode", [Export.SyncMode.ADD_AND_UPDATE, Export.SyncMode.MIRROR])
def test_a_record_at_another_connection_excludes_under_the_default_rule(
    backend, make_export, everyone, people, other_connection, mode
):
    record("bob@example.com", other_connection)
    record("cat@example.com", other_connection, ConsentState.BOUNCED, list_id="elsewhere")

    run = run_now(make_export(everyone, sync_mode=mode))

    assert sorted(backend.pushed) == ["ann@example.com", "dan@example.com"]
    assert (run.status, run.excluded, run.skipped, run.added) == (Status.SUCCEEDED, 2, 0, 2)
    assert listed(run) == {
        "  Bob@Example.com ": EXCLUDED_CONSENT,
        "cat@example.com": EXCLUDED_CONSENT,
    }
    assert runs.unaccounted(run) == 0


def test_the_per_connection_rule_excludes_only_from_that_connections_exports(
    backend, make_export, everyone, people, connection, other_connection
):
    consent.rule_save(scope=SAME_CONNECTION)
    record("bob@example.com", other_connection)
    record("cat@example.com", connection)

    run = run_now(make_export(everyone))

    assert "bob@example.com" in backend.pushed
    assert "cat@example.com" not in backend.pushed
    assert listed(run) == {"cat@example.com": EXCLUDED_CONSENT}
    assert run.excluded == 1


@pytest.mark.parametrize("scope", ConsentRule.Scope.values)
def test_the_record_of_a_deleted_connection_excludes_from_every_export(
    backend, make_export, everyone, people, other_connection, scope
):
    consent.rule_save(scope=scope)
    record("ann@example.com", other_connection)
    other_connection.delete()
    assert ConsentRecord.objects.get().connection_id is None

    run = run_now(make_export(everyone))

    assert "ann@example.com" not in backend.pushed
    assert listed(run) == {"ann@example.com": EXCLUDED_CONSENT}


@pytest.mark.parametrize("scope", ConsentRule.Scope.values)
def test_permission_off_keeps_people_out_of_other_connections_exports_only(
    backend, make_export, everyone, people, connection, other_connection, scope
):
    """Ortto's permission is off for people our exports created without consent too, so its
    own exports go on updating them (Ortto keeps the permission); other connections' do not
    send them under the default rule."""
    consent.rule_save(scope=scope)
    record("ann@example.com", connection, ConsentState.PERMISSION_OFF)
    record("bob@example.com", other_connection, ConsentState.PERMISSION_OFF)

    run = run_now(make_export(everyone))

    assert "ann@example.com" in backend.pushed
    excluded = {} if scope == SAME_CONNECTION else {"  Bob@Example.com ": EXCLUDED_CONSENT}
    assert listed(run) == excluded
    assert run.excluded == len(excluded)


def test_an_address_excluded_in_admin_is_listed_with_that_rule_first(
    backend, make_export, everyone, people, other_connection
):
    exclusions.exclusions_add(kind=Exclusion.Kind.ADDRESS, values=["ann@example.com"])
    record("ann@example.com", other_connection)
    record("dan@example.com", other_connection)

    run = run_now(make_export(everyone))

    assert listed(run) == {"ann@example.com": EXCLUDED_ADDRESS, "dan@example.com": EXCLUDED_CONSENT}
    assert run.excluded == 2


def test_a_mirror_export_removes_an_address_in_its_list_that_now_has_a_record(
    backend, make_export, everyone, people, other_connection
):
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    assert len(backend.lists["list-1"]) == 4

    record("ann@example.com", other_connection, ConsentState.COMPLAINED)
    run = run_now(export)

    assert backend.removed == ["ann@example.com"]
    assert "ann@example.com" not in backend.lists["list-1"]
    assert (run.removed, run.excluded, run.unchanged, run.sent) == (1, 1, 3, 0)
    assert runs.unaccounted(run) == 0
    assert SyncState.objects.get(export=export, email="ann@example.com").state == (
        SyncState.State.REMOVED
    )

    # Nothing changed since: the shortcut counts them excluded again and removes nothing.
    again = run_now(export)
    assert (again.nothing_changed, again.excluded, again.unchanged, again.removed) == (
        True,
        1,
        3,
        0,
    )
    assert listed(again) == {"ann@example.com": EXCLUDED_CONSENT}


def test_an_unchanged_member_with_a_new_record_is_not_hidden_by_nothing_changed(
    backend, make_export, everyone, people, other_connection
):
    export = make_export(everyone)
    run_now(export)
    backend.pushed.clear()

    record("ann@example.com", other_connection)
    run = run_now(export)

    assert (run.nothing_changed, run.excluded, run.unchanged, run.removed) == (False, 1, 3, 0)
    assert backend.pushed == []


def test_resend_everything_never_sends_a_person_with_a_record(
    backend, make_export, everyone, people, other_connection
):
    export = make_export(everyone)
    run_now(export)
    record("ann@example.com", other_connection)
    services.export_request_resend(export=export)
    backend.pushed.clear()

    run = run_now(export)

    assert "ann@example.com" not in backend.pushed
    assert (run.updated, run.excluded) == (3, 1)


def test_retry_failed_records_never_sends_a_person_with_a_record(
    backend, make_export, everyone, people, other_connection
):
    ProfileFactory(email="reject@example.com")
    export = make_export(everyone)
    first = run_now(export)
    assert first.failed == 1
    record("reject@example.com", other_connection, ConsentState.BOUNCED)
    backend.refusing = False
    backend.pushed.clear()

    retry = engine.execute(services.run_retry_failed(run=first, user=None).pk)

    assert "reject@example.com" not in backend.pushed
    assert retry.excluded == 1


def test_a_returning_member_with_a_record_is_not_added_again(
    backend, make_export, everyone, people, other_connection
):
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    SyncState.objects.filter(export=export, email="dan@example.com").update(
        state=SyncState.State.REMOVED
    )
    record("dan@example.com", other_connection)
    backend.pushed.clear()

    run = run_now(export)

    assert backend.pushed == []
    assert listed(run) == {"dan@example.com": EXCLUDED_CONSENT}


def test_push_time_opt_outs_become_records_that_another_connections_export_honours(
    backend, make_export, everyone, people, connection, other_connection
):
    ProfileFactory(email="unsubscribed@example.com")
    run_now(make_export(everyone))
    assert "unsubscribed@example.com" not in backend.pushed
    created = ConsentRecord.objects.get()
    assert (created.email, created.state, created.connection_id, created.list_id) == (
        "unsubscribed@example.com",
        ConsentState.UNSUBSCRIBED,
        connection.pk,
        "list-1",
    )
    assert SyncState.objects.get(email="unsubscribed@example.com").state == (
        SyncState.State.OPTED_OUT
    )

    second = make_export(everyone, display_name="Second")
    Export.objects.filter(pk=second.pk).update(connection=other_connection, list_id="list-2")
    backend.pushed.clear()

    run = run_now(second)

    assert "unsubscribed@example.com" not in backend.pushed
    assert listed(run) == {"unsubscribed@example.com": EXCLUDED_CONSENT}
    assert run.excluded == 1


def test_the_export_that_found_the_opt_out_still_skips_it_as_opted_out(
    backend, make_export, everyone, people
):
    ProfileFactory(email="unsubscribed@example.com")
    export = make_export(everyone)
    run_now(export)
    services.export_request_resend(export=export)

    run = run_now(export)

    assert listed(run) == {"unsubscribed@example.com": SKIP_OPTED_OUT}
    assert (run.skipped, run.excluded) == (1, 0)


def test_a_code_the_backend_names_gives_the_records_state(backend, make_export, everyone, people):
    backend.opted_out_states = {"206": ConsentState.BOUNCED}
    ProfileFactory(email="unsubscribed@example.com")
    run_now(make_export(everyone))
    assert ConsentRecord.objects.get().state == ConsentState.BOUNCED


def test_removals_that_find_an_opt_out_record_it_with_its_state_in_one_statement(
    backend, make_export, everyone, people, connection
):
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)
    run_now(export)
    people["ann"].delete()
    remove = backend.remove
    backend.remove = lambda list_id, emails: PushResult(
        accepted=remove(list_id, emails).accepted,
        opted_out=[email.upper() for email in emails],
        opted_out_states={email.upper(): ConsentState.CLEANED for email in emails},
    )

    with CaptureQueriesContext(db_connection) as queries:
        run = run_now(export)

    assert run.removed == 1
    created = ConsentRecord.objects.get()
    assert (created.email, created.state, created.connection_id) == (
        "ann@example.com",
        ConsentState.CLEANED,
        connection.pk,
    )
    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "segments_consentrecord"')]
    assert len(inserts) == 1


def test_a_record_already_there_is_left_as_it_is(make_export, connection):
    export = make_export()
    consent.record_opt_outs(export, {"ann@example.com": ConsentState.UNSUBSCRIBED})
    consent.record_opt_outs(export, {"ann@example.com": ConsentState.UNSUBSCRIBED})
    assert ConsentRecord.objects.count() == 1


def test_without_consent_records_the_statement_is_the_one_before_them(
    make_export, everyone, people
):
    export = make_export(everyone)
    assert consent.excluded_addresses_sql(export) is None
    assert consent.fingerprint(export) is None


def test_the_preview_counts_people_with_records_as_excluded(
    make_export, everyone, people, other_connection
):
    record("ann@example.com", other_connection)
    record("ann@example.com", other_connection, ConsentState.BOUNCED)
    record("bob@example.com", None)

    preview = services.export_preview(export=make_export(everyone))

    assert (preview["excluded"], preview["skipped"], preview["added"]) == (2, 0, 2)
    assert preview["excluded_by_reason"] == [{"code": EXCLUDED_CONSENT, "count": 2}]
