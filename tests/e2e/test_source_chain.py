"""End to end: a PostgreSQL source feeds a segment that feeds an export, on the schedule, in a
real worker process, to the Autopilot fake."""

from __future__ import annotations

import pytest

from exports.models import Export, ExportRun
from exports.tasks import scheduled_refresh
from segments.models import Profile, Segment
from sources.models import SourceRun
from tests.e2e.conftest import wait_until
from tests.e2e.test_export_runs import _connection, autopilot_list_id
from tests.factories import SegmentFactory
from tests.sources.places import people
from tests.sources.test_runs import make_source

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def autopilot_connection(alice):
    return _connection("autopilot", {"api_key": "demo-autopilot-key"}, alice)


def test_the_scheduled_refresh_reads_the_source_then_refreshes_then_exports(
    worker,
    autopilot_fake,
    autopilot_connection,
    postgresql_place,
    alice,
):
    postgresql_place.write(people(50))
    source = make_source(postgresql_place, sync_mode="incremental", cursor_column="updated_at")
    high_scorers = SegmentFactory(
        name="High scorers",
        rules={
            "match": "all",
            "conditions": [{"field": "score", "operator": "greater_than", "value": "30"}],
        },
    )
    list_id = autopilot_list_id(autopilot_fake)
    export = Export.objects.create(
        display_name="High scorers to Autopilot",
        connection=autopilot_connection,
        list_id=list_id,
        first_name_field="first_name",
        last_name_field="last_name",
        created_by=alice,
        schedule_enabled=True,
    )
    export.segments.set([high_scorers])

    scheduled_refresh.delay()

    def delivered():
        run = ExportRun.objects.filter(export=export).first()
        return run if run is not None and not run.is_active else None

    run = wait_until(delivered, timeout=90, message="the scheduled export run")
    assert run.status == ExportRun.Status.SUCCEEDED, worker.log()[-3000:]
    assert SourceRun.objects.get(source=source).status == SourceRun.Status.SUCCEEDED
    assert Profile.objects.count() == 50
    assert Segment.objects.get(pk=high_scorers.pk).member_count == 30  # 1.5 x n > 30: n > 20
    members = autopilot_fake.state(list=list_id)["accounts"][0]["lists"][list_id]["members"]
    assert set(members) == {f"person{n}@example.com" for n in range(21, 51)}
    assert members["person30@example.com"]["FirstName"] == "First30"
