"""A run after a full delivery computes only what changed, from the last run's members (the
basis), and ends exactly where computing every member would (issue 28)."""

from __future__ import annotations

import pytest
from django.db import connection as db_connection
from django.db import transaction

from core.consent import ConsentState
from exports import engine, exclusions, services
from exports.models import Exclusion, Export, ExportRun, ExportRunFailure
from segments.models import ConsentRecord, Profile
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db
Status = ExportRun.Status


@pytest.fixture(autouse=True)
def one_batch_at_a_time(settings):
    settings.EXPORT_CONCURRENCY = 1


@pytest.fixture
def people(everyone):
    with transaction.atomic():
        return _people()


def _people() -> dict[str, Profile]:
    made = {
        f"p{number}": ProfileFactory(
            customer_id=f"p{number}", email=f"p{number}@example.com", first_name=f"F{number}"
        )
        for number in range(6)
    }
    made["no-address"] = ProfileFactory(customer_id="no-address", email="")
    made["bad"] = ProfileFactory(customer_id="bad", email="not-an-address")
    # Two people with one address: the first is sent, the second skipped as a duplicate.
    made["dup-first"] = ProfileFactory(customer_id="dup-first", email="dup@example.com")
    made["dup-second"] = ProfileFactory(customer_id="dup-second", email="Dup@Example.com ")
    return made


@pytest.fixture
def mirror(make_export, everyone, people):
    return make_export(everyone, sync_mode=Export.SyncMode.MIRROR)


def run_now(export: Export) -> ExportRun:
    return engine.execute(services.run_request(export=Export.objects.get(pk=export.pk)).pk)


# Each change in a transaction of its own (here a savepoint, in the test's transaction), as
# every change is outside the tests: a run tells a changed profile by the transaction that
# wrote its row.


def edit(profile: Profile, **fields) -> None:
    with transaction.atomic():
        for name, value in fields.items():
            setattr(profile, name, value)
        profile.save()


def leave(profile: Profile, everyone) -> None:
    with transaction.atomic():
        profile.delete()
    segment_refresh(segment_id=everyone.pk)


def join(everyone, **fields) -> None:
    with transaction.atomic():
        ProfileFactory(**fields)
    segment_refresh(segment_id=everyone.pk)


def consent_record(email: str) -> ConsentRecord:
    return ConsentRecord.objects.create(
        email=email, state=ConsentState.UNSUBSCRIBED, connection=None, connection_name="Gone"
    )


CHANGES = {
    "names changed": lambda p, everyone: edit(p["p1"], first_name="Changed"),
    "a member left": lambda p, everyone: leave(p["p2"], everyone),
    "a member joined": lambda p, everyone: join(everyone, email="new@example.com"),
    "an address moved to a namesake's": lambda p, everyone: edit(p["p3"], email="p1@example.com"),
    "the sent namesake left": lambda p, everyone: leave(p["dup-first"], everyone),
    "the sent namesake's address changed": lambda p, everyone: edit(
        p["dup-first"], email="other@example.com"
    ),
    "an unusable address fixed": lambda p, everyone: edit(p["bad"], email="good@example.com"),
    "an address removed": lambda p, everyone: edit(p["p4"], email=""),
    "a consent record for an unchanged member": lambda p, everyone: consent_record(
        "p5@example.com"
    ),
    "a consent record for a duplicate's address": lambda p, everyone: consent_record(
        "dup@example.com"
    ),
    "an excluded address": lambda p, everyone: exclusions.exclusions_add(
        kind=Exclusion.Kind.ADDRESS, values=["p0@example.com"]
    ),
}


def outcome(run: ExportRun) -> dict:
    names = ("profiles_total", "added", "updated", "unchanged", "removed", "skipped", "excluded")
    return {name: getattr(run, name) for name in names}


def expected(export: Export) -> dict:
    """What computing every member says the next run does (the preview computes them all)."""
    preview = services.export_preview(export=Export.objects.get(pk=export.pk))
    return {
        "profiles_total": preview["members"],
        "added": preview["added"],
        "updated": preview["updated"],
        "unchanged": preview["unchanged"],
        "removed": preview["removed"],
        "skipped": preview["skipped"],
        "excluded": preview["excluded"],
    }


def listed(run: ExportRun) -> set[tuple[str, str]]:
    return set(
        ExportRunFailure.objects.filter(run=run, skipped=True).values_list("customer_id", "code")
    )


def sent_now(export: Export) -> set[str]:
    """Every address a full computation would have in the list: the members sent or unchanged."""
    run = ExportRun.objects.create(export=export, status=Status.SKIPPED)
    try:
        from exports.recipients import build_members

        build_members(run)
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"SELECT email FROM export_run_{run.pk}_recipients"
                " WHERE action IN ('add', 'update', 'return', 'unchanged')"
            )
            return {row[0] for row in cursor.fetchall()}
    finally:
        with db_connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS export_run_{run.pk}_recipients")
        run.delete()


def bases() -> set[str]:
    return {name for name in db_connection.introspection.table_names() if name.endswith("_basis")}


@pytest.fixture(autouse=True)
def no_earlier_bases(db):
    """Tests with a real worker commit their runs, and their flush leaves the bases (tables of
    no model) behind: each test here starts without them (dropped inside its transaction)."""
    with db_connection.cursor() as cursor:
        for name in bases():
            cursor.execute(f"DROP TABLE {db_connection.ops.quote_name(name)}")


@pytest.fixture
def full_computations(monkeypatch):
    """How many times runs computed every member."""
    from exports import recipients

    calls = []
    build_members = recipients.build_members

    def counted(run):
        calls.append(run.pk)
        return build_members(run)

    monkeypatch.setattr(recipients, "build_members", counted)
    return calls


@pytest.mark.parametrize("change", CHANGES)
def test_a_run_after_a_change_ends_as_computing_everyone_would(
    backend, mirror, everyone, people, change, full_computations
):
    first = run_now(mirror)
    assert first.status == Status.SUCCEEDED
    assert bases() == {f"export_run_{first.pk}_basis"}
    CHANGES[change](people, everyone)
    should = expected(mirror)
    del full_computations[:]

    run = run_now(mirror)

    assert run.status == Status.SUCCEEDED, run.last_error
    # New exclusions make everyone computed again; anything else only what changed.
    assert full_computations == ([run.pk] if change == "an excluded address" else [])
    assert outcome(run) == should
    assert bases() == {f"export_run_{run.pk}_basis"}
    assert set(backend.lists["list-1"]) == sent_now(mirror)


def test_skipped_members_are_listed_as_computing_everyone_would(backend, mirror, everyone, people):
    run_now(mirror)
    edit(people["p3"], email="p1@example.com")  # a new duplicate
    leave(people["dup-first"], everyone)  # the old duplicate is sent now
    consent_record("p5@example.com")

    run = run_now(mirror)

    assert listed(run) == {
        ("no-address", "missing_email"),
        ("bad", "invalid_email"),
        ("p3", "duplicate_email"),
        ("p5", "excluded_consent"),
    }
    assert set(backend.lists["list-1"]) == sent_now(mirror)
    assert "p5@example.com" in backend.removed and "p3@example.com" in backend.removed


def test_one_change_after_another_carries_the_basis_on(backend, mirror, everyone, people):
    run_now(mirror)
    for change in ("names changed", "a member left", "a member joined", "the sent namesake left"):
        CHANGES[change](people, everyone)
        should = expected(mirror)
        run = run_now(mirror)
        assert run.status == Status.SUCCEEDED
        assert outcome(run) == should, change
        assert set(backend.lists["list-1"]) == sent_now(mirror), change
    assert bases() == {f"export_run_{run.pk}_basis"}


def test_a_lifted_consent_record_lets_the_person_in_again(backend, mirror, everyone, people):
    record = consent_record("p5@example.com")
    first = run_now(mirror)
    assert ("p5", "excluded_consent") in listed(first)
    record.delete()
    should = expected(mirror)

    run = run_now(mirror)

    assert outcome(run) == should
    assert run.added == 1
    assert "p5@example.com" in backend.lists["list-1"]


def test_a_run_with_failures_leaves_no_basis(backend, make_export, everyone, people):
    ProfileFactory(customer_id="refused", email="reject@example.com")
    export = make_export(everyone, sync_mode=Export.SyncMode.MIRROR)

    run = run_now(export)

    assert run.failed == 1
    assert bases() == set()
    edit(people["p1"], first_name="Changed")
    should = expected(export)
    second = run_now(export)
    # Everyone computed again: the refused address is sent again (and refused again).
    assert (second.updated, second.failed, second.unchanged) == (1, 1, should["unchanged"])
    assert bases() == set()


def test_the_sweeper_keeps_the_basis_of_the_last_delivery_only(backend, mirror, everyone, people):
    from exports.recipients import drop_orphaned_tables

    first = run_now(mirror)
    with db_connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE export_run_{first.pk + 1000}_basis (position bigint)")

    dropped = drop_orphaned_tables([])

    assert dropped == [f"export_run_{first.pk + 1000}_basis"]
    assert bases() == {f"export_run_{first.pk}_basis"}


def test_a_change_made_in_sql_without_stamping_the_profile_is_sent(
    backend, mirror, everyone, people, full_computations
):
    run_now(mirror)
    with transaction.atomic(), db_connection.cursor() as cursor:
        cursor.execute(
            "UPDATE segments_profile SET first_name = 'By hand' WHERE customer_id = 'p4'"
        )
    del full_computations[:]

    run = run_now(mirror)

    assert not run.nothing_changed
    assert (run.updated, run.unchanged) == (1, 6)
    assert backend.lists["list-1"]["p4@example.com"].first_name == "By hand"
    assert full_computations == []


def test_a_segment_added_to_the_export_computes_everyone(
    backend, mirror, everyone, people, full_computations
):
    run_now(mirror)
    newcomers = SegmentFactory(
        name="Newcomers",
        rules={"match": "all", "conditions": [{"field": "customer_id", "operator": "is_empty"}]},
    )
    segment_refresh(segment_id=newcomers.pk)
    mirror.segments.add(newcomers)
    del full_computations[:]

    run = run_now(mirror)

    assert run.status == Status.SUCCEEDED, run.last_error
    assert full_computations == [run.pk]


def test_a_membership_written_in_sql_is_seen(backend, mirror, everyone, people, full_computations):
    run_now(mirror)
    with transaction.atomic(), db_connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM segments_segmentmember WHERE profile_id = %s", [people["p4"].pk]
        )
        # As a refresh would: the segment's members changed.
        cursor.execute(
            "UPDATE segments_segment SET members_version = members_version + 1 WHERE id = %s",
            [everyone.pk],
        )
    should = expected(mirror)
    del full_computations[:]

    run = run_now(mirror)

    assert outcome(run) == should
    assert run.removed == 1
    assert "p4@example.com" not in backend.lists["list-1"]
    assert full_computations == []
