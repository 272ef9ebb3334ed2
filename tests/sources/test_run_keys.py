"""Where a run keeps the customer ids it read (``sources.keys``): in ``SourceKey`` only when
"remove missing profiles" judges on them, else for the run's own duration; turning the option
on still judges the profiles the source gave while it was off."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from config.translation import shown
from segments.models import Profile
from sources import keys, services
from sources.models import Source, SourceKey, SourceRun
from tests.sources.places import people
from tests.sources.test_runs import make_source, run

pytestmark = pytest.mark.django_db


def remove_missing(source: Source, on: bool) -> Source:
    return services.source_save(
        source=source,
        name=source.name,
        kind=source.kind,
        connection_settings=source.connection_settings,
        read_table=source.read_table,
        mapping=source.mapping,
        remove_missing=on,
    )


def test_an_id_read_again_in_a_later_batch_is_rejected_without_keys_kept(
    postgresql_place, settings
):
    settings.SOURCE_BATCH_ROWS = 1  # every row a batch of its own
    rows = people(4)
    rows.append((5, "C00002 ", *rows[1][2:]))  # the same id once trimmed
    postgresql_place.write(rows)
    source = make_source(postgresql_place)
    result = run(source)
    assert (result.status, result.created_count, result.rejected_count) == (
        "completed_with_errors",
        4,
        1,
    )
    [rejected] = result.rejected_rows
    assert rejected["key"] == "C00002"
    assert "already read earlier in this run" in shown(rejected["reason"])
    assert not SourceKey.objects.filter(source=source).exists()
    # the next run is another reading: nothing of this one's ids is left to repeat
    assert run(source).rejected_count == 1


def test_with_remove_missing_every_id_read_is_recorded(postgresql_place):
    postgresql_place.write(people(6))
    source = make_source(postgresql_place, remove_missing=True)
    result = run(source)
    assert SourceKey.objects.filter(source=source, run=result).count() == 6


def test_turning_remove_missing_on_judges_the_profiles_given_while_it_was_off(postgresql_place):
    postgresql_place.write(people(10))
    Profile.objects.create(customer_id="from-elsewhere")
    source = make_source(postgresql_place)
    run(source)
    assert not SourceKey.objects.filter(source=source).exists()
    postgresql_place.execute("DELETE FROM people WHERE id IN (3, 4)")
    source = remove_missing(source, True)
    result = run(source)
    assert (result.status, result.removed_count) == ("succeeded", 2)
    assert not Profile.objects.filter(customer_id__in=["C00003", "C00004"]).exists()
    assert Profile.objects.filter(customer_id="from-elsewhere").exists()
    assert SourceKey.objects.filter(source=source, run=result).count() == 8


def test_turning_remove_missing_on_reads_a_dead_reading_again_from_the_start(
    postgresql_place, reading
):
    postgresql_place.write(people(25))
    source = make_source(postgresql_place)
    reading["dies_after"] = 1
    run(source)
    source = remove_missing(source, True)
    reading["dies_after"] = None
    again = run(source)
    assert reading["rows"] == [10, 25] and again.resumed_from is None
    assert SourceKey.objects.filter(source=source, run=again).count() == 25


def remembered(run_, customer_ids: list[str]) -> bool:
    with connection.cursor() as cursor:
        return keys.remember_new_keys(run_, customer_ids, cursor)


def test_ids_stored_without_staging_are_refused_when_the_run_read_one_before(postgresql_place):
    source = make_source(postgresql_place)
    this_run = SourceRun.objects.create(source=source, sync_mode=source.sync_mode)
    with keys.run_keys(this_run), transaction.atomic():
        assert remembered(this_run, ["a", "b\\with\ttab"])
        with pytest.raises(_Undone), transaction.atomic():
            assert not remembered(this_run, ["c", "b\\with\ttab"])
            raise _Undone()
        assert remembered(this_run, ["c"])


def test_ids_stored_without_staging_go_to_source_keys_with_remove_missing(postgresql_place):
    source = make_source(postgresql_place, remove_missing=True)
    earlier = SourceRun.objects.create(
        source=source, sync_mode=source.sync_mode, status=SourceRun.Status.SUCCEEDED
    )
    SourceKey.objects.create(source=source, customer_id="from-before", run=earlier)
    this_run = SourceRun.objects.create(source=source, sync_mode=source.sync_mode)
    assert remembered(this_run, ["new", "from-before"])
    assert set(SourceKey.objects.filter(run=this_run).values_list("customer_id", flat=True)) == {
        "new",
        "from-before",
    }
    assert not remembered(this_run, ["newer", "new"])


class _Undone(Exception):
    """Undoes a savepoint, as ``storing.copy_new_profiles`` does."""
