"""Runs of a source into the profiles, against real places: every mode, a run that dies and
resumes from its cursor, bad rows, removal of missing profiles, several sources."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest
from django.db import DatabaseError

from audit.models import AuditEntry
from config.translation import shown
from segments.models import Profile, ProfileField
from sources import services
from sources.kinds import registry
from sources.kinds.base import SourceError
from sources.models import FieldOrigin, Source, SourceRun
from tests.sources.places import START, people

pytestmark = pytest.mark.django_db

MAPPING = {
    "customer_id": "customer",
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "attributes": {"score": "score", "active": "active", "born": "born", "changed": "updated_at"},
}


def make_source(place, name="Warehouse", **options) -> Source:
    return services.source_save(
        name=name,
        kind=place.kind,
        connection_settings=place.connection_settings,
        password=place.secrets.get("password"),
        read_table=place.read_table,
        mapping=options.pop("mapping", MAPPING),
        **options,
    )


def run(source: Source) -> SourceRun:
    with_lock = SourceRun.objects.create(source=source, sync_mode=source.sync_mode)
    return services.run_execute(run_id=with_lock.pk)


@pytest.fixture(params=["postgresql_place", "mysql_place", "parquet_place"])
def any_place(request):
    return request.getfixturevalue(request.param)


def test_a_full_sync_creates_a_profile_per_row_with_typed_fields(any_place):
    any_place.write(people(45))
    result = run(make_source(any_place))
    assert (result.status, result.rows_read, result.created_count) == ("succeeded", 45, 45)
    profile = Profile.objects.get(customer_id="C00002")
    assert (profile.email, profile.first_name, profile.last_name) == (
        "person2@example.com",
        "First2",
        "Last2",
    )
    assert profile.attributes == {
        "score": 3,
        "active": "true",
        "born": "1990-01-03",
        "changed": "2026-01-01T08:02:00+00:00",
    }
    types = dict(ProfileField.objects.values_list("name", "data_type"))
    assert (types["score"], types["active"], types["born"], types["changed"]) == (
        "number",
        "boolean",
        "date",
        "datetime",
    )


def test_a_second_full_sync_writes_only_the_profiles_that_changed(postgresql_place):
    postgresql_place.write(people(30))
    source = make_source(postgresql_place)
    run(source)
    postgresql_place.execute("UPDATE people SET email = 'new7@example.com' WHERE id = 7")
    again = run(source)
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 1, 29)
    assert Profile.objects.get(customer_id="C00007").email == "new7@example.com"


def test_an_incremental_sync_reads_only_rows_past_the_cursor_with_the_overlap(
    postgresql_place, settings
):
    settings.SOURCE_CURSOR_OVERLAP_SECONDS = 120  # two rows' worth
    postgresql_place.write(people(30))
    source = make_source(postgresql_place, sync_mode="incremental", cursor_column="updated_at")
    first = run(source)
    source.refresh_from_db()
    assert first.rows_read == 30
    assert source.cursor_value == {"kind": "naive_datetime", "value": "2026-01-01T08:30:00"}
    postgresql_place.execute(
        "INSERT INTO people SELECT id + 100, 'N' || id, email, first_name, last_name, score,"
        " active, born, updated_at + interval '1 hour' FROM people WHERE id <= 3"
    )
    second = run(source)
    # rows at 08:28, 08:29, 08:30 again (the overlap), then the three new ones
    assert (second.rows_read, second.created_count, second.unchanged_count) == (6, 3, 3)
    assert Profile.objects.count() == 33


def test_a_run_that_dies_resumes_from_its_last_committed_cursor(
    postgresql_place, settings, monkeypatch
):
    settings.SOURCE_BATCH_ROWS = 10
    settings.SOURCE_CURSOR_OVERLAP_SECONDS = 0
    postgresql_place.write(people(45))
    source = make_source(postgresql_place, sync_mode="incremental", cursor_column="updated_at")
    real = registry.kind_class("postgresql")

    class DiesAfterTwoBatches(real):
        def batches(self, read, batch_size):
            for number, batch in enumerate(super().batches(read, batch_size), start=1):
                yield batch
                if number == 2:
                    raise SourceError("The worker was killed.")

    monkeypatch.setattr(registry, "kind_class", lambda kind: DiesAfterTwoBatches)
    died = run(source)
    assert (died.status, died.rows_read, died.created_count) == ("failed", 20, 20)
    assert "killed" in shown(died.error)
    source.refresh_from_db()
    assert source.status == "failing"
    assert source.cursor_value["value"] == (START + dt.timedelta(minutes=20)).isoformat()
    monkeypatch.setattr(registry, "kind_class", lambda kind: real)
    resumed = run(source)
    # from row 20 (read again, unchanged) to row 45
    assert (resumed.status, resumed.rows_read, resumed.created_count) == ("succeeded", 26, 25)
    assert Profile.objects.count() == 45


def test_a_source_that_disappears_mid_run_fails_clearly_and_keeps_what_was_committed(
    postgresql_place, settings, monkeypatch
):
    settings.SOURCE_BATCH_ROWS = 10
    postgresql_place.write(people(400))
    postgresql_place.read_table = ""
    source = make_source(  # wide rows (8 MB): the server is still sending them
        postgresql_place,
        read_query="SELECT p.*, repeat(md5(customer), 600) AS padding FROM people p",
        sync_mode="incremental",
        cursor_column="updated_at",
    )
    real_import = services.import_columns
    calls = []

    def import_then_lose_the_source(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            with psycopg.connect(
                host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
            ) as admin:
                # only this session's source database: other sessions (xdist workers, other
                # work trees) read their own sources at the same time
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'audience-relay-source' AND datname = %s",
                    [postgresql_place.connection_settings["database"]],
                )
        return real_import(*args, **kwargs)

    monkeypatch.setattr(services, "import_columns", import_then_lose_the_source)
    died = run(source)
    assert died.status == "failed"
    assert "The connection to the source was lost" in shown(died.error)
    # what was read before the connection broke is committed, and the cursor with it
    assert 0 < died.created_count < 400 and Profile.objects.count() == died.created_count
    source.refresh_from_db()
    last = START + dt.timedelta(minutes=died.created_count)
    assert source.cursor_value["value"] == last.isoformat()


def test_rows_without_or_with_a_repeated_customer_id_are_rejected_and_listed(postgresql_place):
    rows = people(5)
    rows[1] = (2, None, *rows[1][2:])
    rows.append((6, "C00003", *rows[2][2:]))
    postgresql_place.write(rows)
    result = run(make_source(postgresql_place))
    assert (result.status, result.created_count, result.rejected_count) == (
        "completed_with_errors",
        4,
        2,
    )
    # a full sync reads in customer id order (rows without one last): lines are places in it
    listed = {row["line"]: row for row in result.rejected_rows}
    assert listed[6]["key"] == ""
    assert "no customer id" in shown(listed[6]["reason"])
    assert listed[3]["key"] == "C00003"
    assert "already read in this run (line 2)" in shown(listed[3]["reason"])


def test_a_value_that_does_not_fit_its_field_type_is_listed(postgresql_place):
    rows = people(3)
    rows[0] = (*rows[0][:5], float("nan"), *rows[0][6:])
    postgresql_place.write(rows)
    result = run(make_source(postgresql_place))
    assert result.rejected_count == 1 and result.created_count == 2
    assert "“score” does not fit the field “score”" in shown(result.rejected_rows[0]["reason"])
    assert result.rejected_rows[0]["key"] == "C00001"


def test_a_mapped_column_that_is_gone_fails_the_run_with_its_name(postgresql_place):
    postgresql_place.write(people(3))
    source = make_source(
        postgresql_place, mapping={"customer_id": "customer", "attributes": {"tier": "tier"}}
    )
    result = run(source)
    assert result.status == "failed" and "“tier”" in shown(result.error)


def test_a_missing_cursor_column_fails_the_run_clearly(postgresql_place):
    postgresql_place.write(people(3))
    source = make_source(postgresql_place, sync_mode="incremental", cursor_column="changed_on")
    result = run(source)
    assert result.status == "failed" and "“changed_on” is not among the columns" in shown(
        result.error
    )


def test_fields_not_mapped_keep_their_values(postgresql_place):
    postgresql_place.write(people(2))
    Profile.objects.create(customer_id="C00001", email="kept@example.com", attributes={"x": 1})
    run(
        make_source(
            postgresql_place, mapping={"customer_id": "customer", "first_name": "first_name"}
        )
    )
    profile = Profile.objects.get(customer_id="C00001")
    assert (profile.email, profile.first_name, profile.attributes) == (
        "kept@example.com",
        "First1",
        {"x": 1},
    )


def test_remove_missing_removes_the_profiles_the_source_no_longer_has(postgresql_place):
    postgresql_place.write(people(10))
    Profile.objects.create(customer_id="from-elsewhere")
    source = make_source(postgresql_place, remove_missing=True)
    run(source)
    postgresql_place.execute("DELETE FROM people WHERE id IN (3, 4)")
    result = run(source)
    assert (result.status, result.removed_count) == ("succeeded", 2)
    assert not Profile.objects.filter(customer_id__in=["C00003", "C00004"]).exists()
    assert Profile.objects.filter(customer_id="from-elsewhere").exists()


def test_a_removal_over_the_threshold_waits_for_approval(postgresql_place, settings, alice):
    settings.SOURCE_REMOVAL_APPROVAL_THRESHOLD = 2
    postgresql_place.write(people(10))
    source = make_source(postgresql_place, remove_missing=True)
    run(source)
    postgresql_place.execute("DELETE FROM people WHERE id <= 3")
    waiting = run(source)
    assert (waiting.status, waiting.removal_pending) == ("awaiting_approval", 3)
    assert Profile.objects.count() == 10
    done = services.run_approve_removal(run=waiting, approve=True, user=alice)
    assert (done.status, done.removed_count) == ("succeeded", 3)
    assert Profile.objects.count() == 7
    assert AuditEntry.objects.filter(action="source.removal_approved").exists()


def test_never_two_runs_of_one_source_at_once(postgresql_place):
    postgresql_place.write(people(2))
    source = make_source(postgresql_place)
    services.run_request(source=source)
    with pytest.raises(services.SourceAlreadyRunning):
        services.run_request(source=source)
    assert SourceRun.objects.filter(source=source).count() == 1


def test_the_password_is_kept_encrypted_and_never_audited(mysql_place, alice):
    source = services.source_save(
        name="Shop",
        kind="mysql",
        connection_settings={**mysql_place.connection_settings, "password": "leak?"},
        password="hunter2-secret",
        read_table="people",
        mapping=MAPPING,
        user=alice,
    )
    assert "hunter2" not in source.encrypted_secrets
    assert "password" not in source.connection_settings
    entry = AuditEntry.objects.get(action="source.created")
    assert "hunter2" not in str(entry.after) and "encrypted" not in str(entry.after)
    assert services.kind_for(source).secrets == {"password": "hunter2-secret"}
    services.source_save(
        source=source,
        name="Shop",
        kind="mysql",
        connection_settings=mysql_place.connection_settings,
        password=None,
        read_table="people",
        mapping=MAPPING,
    )
    assert services.kind_for(source).secrets == {"password": "hunter2-secret"}


def test_each_mapped_field_records_the_source_that_set_it_last(postgresql_place, parquet_place):
    postgresql_place.write(people(3))
    parquet_place.write(people(3))
    crm = make_source(postgresql_place, name="CRM")
    shop = make_source(
        parquet_place,
        name="Shop",
        mapping={"customer_id": "customer", "attributes": {"score": "score"}},
    )
    run(crm)
    run(shop)
    origins = dict(FieldOrigin.objects.values_list("field_name", "source__name"))
    assert origins == {
        "email": "CRM",
        "first_name": "CRM",
        "last_name": "CRM",
        "score": "Shop",
        "active": "CRM",
        "born": "CRM",
        "changed": "CRM",
    }


def test_a_run_whose_worker_was_killed_is_closed_and_the_next_one_goes_on_from_its_cursor(
    postgresql_place, settings
):
    settings.SOURCE_CURSOR_OVERLAP_SECONDS = 0
    postgresql_place.write(people(30))
    source = make_source(postgresql_place, sync_mode="incremental", cursor_column="updated_at")
    source.cursor_value = {"kind": "naive_datetime", "value": "2026-01-01T08:20:00"}
    source.save()
    killed = SourceRun.objects.create(source=source, sync_mode="incremental", status="running")

    nxt = services.run_request_now(source=source, trigger="manual")
    killed.refresh_from_db()
    assert killed.status == "failed" and "interrupted" in shown(killed.error)
    assert (nxt.status, nxt.rows_read) == ("succeeded", 11)  # rows 20 to 30


def test_the_field_counts_follow_the_profiles_written_and_removed(
    postgresql_place, django_capture_on_commit_callbacks
):
    postgresql_place.write(people(10))
    source = make_source(postgresql_place, remove_missing=True)
    with django_capture_on_commit_callbacks(execute=True) as recounts:
        run(source)
    assert len(recounts) == 1
    assert ProfileField.objects.get(name="score").profile_count == 10
    postgresql_place.execute("DELETE FROM people WHERE id IN (3, 4)")
    with django_capture_on_commit_callbacks(execute=True):
        assert run(source).removed_count == 2
    assert ProfileField.objects.get(name="score").profile_count == 8
    with django_capture_on_commit_callbacks(execute=True) as recounts:
        assert run(source).unchanged_count == 8
    assert recounts == []  # nothing written, nothing to recount


def test_a_write_that_fails_stops_the_reading_and_closes_its_connection(
    postgresql_place, settings, monkeypatch
):
    settings.SOURCE_BATCH_ROWS = 10
    postgresql_place.write(people(100))
    source = make_source(postgresql_place)
    real_import = services.import_columns
    calls = []

    def import_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise DatabaseError("the disk is full")
        return real_import(*args, **kwargs)

    monkeypatch.setattr(services, "import_columns", import_then_fail)
    failed = run(source)
    assert (failed.status, failed.created_count) == ("failed", 10)
    assert "failed in our database" in shown(failed.error)
    assert not [t for t in threading.enumerate() if t.name == "source-read-ahead"]
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as admin:
        readers = admin.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'audience-relay-source' AND datname = %s",
            [postgresql_place.connection_settings["database"]],
        ).fetchone()[0]
    assert readers == 0
