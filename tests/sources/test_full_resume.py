"""A full sync that dies goes on after the last customer id it committed, not from the start:
by the same run when its task is redelivered, else by the next run, which takes over the dead
run's keys so that "remove missing profiles" still judges on the whole reading."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.translation import shown
from segments.models import Profile
from sources import services
from sources.models import SourceKey, SourceRun
from tests.sources.places import people
from tests.sources.test_runs import make_source, run

pytestmark = pytest.mark.django_db


class Killed(BaseException):
    """What a killed worker looks like to the code: nothing after this point runs."""


@pytest.fixture(params=["postgresql_place", "mysql_place"])
def any_place(request):
    return request.getfixturevalue(request.param)


def test_a_full_sync_that_fails_goes_on_after_its_last_committed_customer_id(any_place, reading):
    """Databases: a sort by customer id on the server, cheap with an index on it."""
    rows = people(45)
    rows.append((46, None, *rows[0][2:]))  # no customer id: rejected once, wherever it sorts
    any_place.write(rows)
    source = make_source(any_place)
    reading["dies_after"] = 2
    died = run(source)
    assert (died.status, died.rows_read) == ("failed", 20)
    assert died.key_after["value"] in ("C00019", "C00020")  # NULL first on MariaDB
    reading["dies_after"] = None
    resumed = run(source)
    assert reading["rows"] == [20, 26]  # the rest only, not the 20 already committed
    assert resumed.resumed_from == died
    assert (resumed.status, resumed.rows_read, resumed.created_count) == (
        "completed_with_errors",
        46,
        45,
    )
    assert resumed.rejected_count == 1 and resumed.key_after is None
    assert Profile.objects.count() == 45
    died.refresh_from_db()
    assert died.key_after is None  # taken over: no third run goes on from it


def test_a_killed_full_run_whose_task_is_redelivered_goes_on_by_itself(postgresql_place, reading):
    postgresql_place.write(people(35))
    source = make_source(postgresql_place)
    reading.update(dies_after=2, dies_with=Killed())
    queued = SourceRun.objects.create(source=source, sync_mode="full")
    with pytest.raises(Killed):
        services.run_execute(run_id=queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.rows_read, queued.key_after["value"]) == (
        "running",
        20,
        "C00020",
    )
    reading["dies_after"] = None
    done = services.run_execute(run_id=queued.pk)  # the broker hands the task out again
    assert reading["rows"] == [20, 15]
    assert (done.status, done.rows_read, done.created_count) == ("succeeded", 35, 35)


def test_after_a_kill_remove_missing_still_sees_every_row_of_the_whole_reading(
    postgresql_place, reading
):
    postgresql_place.write(people(30))
    source = make_source(postgresql_place, remove_missing=True)
    run(source)
    postgresql_place.execute("DELETE FROM people WHERE id IN (29, 30)")
    reading.update(dies_after=2, dies_with=Killed())
    killed = SourceRun.objects.create(source=source, sync_mode="full")
    with pytest.raises(Killed):
        services.run_execute(run_id=killed.pk)
    reading["dies_after"] = None
    # nobody holds the killed run: the next run closes it and goes on with its reading
    nxt = services.run_request_now(source=source, trigger="manual")
    killed.refresh_from_db()
    assert killed.status == "failed" and "interrupted" in shown(killed.error)
    assert reading["rows"] == [30, 20, 8]
    assert (nxt.status, nxt.resumed_from_id, nxt.rows_read, nxt.removed_count) == (
        "succeeded",
        killed.pk,
        28,
        2,
    )
    assert Profile.objects.count() == 28
    assert SourceKey.objects.filter(source=source, run=nxt).count() == 28


def test_a_file_is_read_again_from_the_start_and_remove_missing_still_sees_every_row(
    parquet_place, reading
):
    parquet_place.write(people(30))
    source = make_source(parquet_place, remove_missing=True)
    run(source)
    parquet_place.write(people(28))
    reading.update(dies_after=2, dies_with=Killed())
    killed = SourceRun.objects.create(source=source, sync_mode="full")
    with pytest.raises(Killed):
        services.run_execute(run_id=killed.pk)
    reading["dies_after"] = None
    done = services.run_execute(run_id=killed.pk)  # redelivered: the whole file again
    assert reading["rows"] == [30, 20, 28]
    assert (done.status, done.rows_read, done.unchanged_count, done.removed_count) == (
        "succeeded",
        28,
        28,
        2,
    )
    assert done.rejected_count == 0  # the rows read before the kill are not repeats
    assert Profile.objects.count() == 28


def test_a_run_that_ended_is_not_gone_on_with(postgresql_place, reading):
    postgresql_place.write(people(12))
    source = make_source(postgresql_place)
    first = run(source)
    assert first.key_after is None
    second = run(source)
    assert reading["rows"] == [12, 12] and second.resumed_from is None


def test_changing_the_customer_id_column_starts_the_next_reading_from_the_start(
    postgresql_place, reading
):
    postgresql_place.write(people(25))
    source = make_source(postgresql_place)
    reading["dies_after"] = 1
    run(source)
    services.source_save(
        source=source,
        name=source.name,
        kind=source.kind,
        connection_settings=source.connection_settings,
        read_table=source.read_table,
        mapping={**source.mapping, "customer_id": "email"},
    )
    reading["dies_after"] = None
    again = run(source)
    assert reading["rows"] == [10, 25] and again.resumed_from is None


def test_the_run_page_says_where_a_dead_reading_stopped_and_who_went_on(
    as_alice, postgresql_place, reading
):
    postgresql_place.write(people(15))
    source = make_source(postgresql_place)
    reading["dies_after"] = 1
    died = run(source)
    page = as_alice.get(reverse("sources:run", args=[died.pk])).content.decode()
    assert "Read up to customer id C00010: the next run goes on after it." in page
    reading["dies_after"] = None
    resumed = run(source)
    page = as_alice.get(reverse("sources:run", args=[resumed.pk])).content.decode()
    assert f"run #{died.pk}</a>, which stopped before the end" in page
