from __future__ import annotations

import pytest

from config.translation import shown
from exports import engine, services
from exports.models import ExportRun
from exports.schedule import run_refresh_chain
from segments.services import segment_set_active
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def test_a_run_of_an_export_whose_segment_is_inactive_is_skipped_with_the_reason(
    backend, make_export
):
    ProfileFactory()
    segment = SegmentFactory(name="Lapsed")
    export = make_export(segment)
    segment_set_active(segment=segment, active=False)
    run = engine.execute(services.run_request(export=export).pk)
    assert run.status == ExportRun.Status.SKIPPED
    assert "segment “Lapsed” is inactive" in shown(run.last_error)
    assert backend.calls == 0


def test_the_scheduled_chain_skips_exports_of_inactive_segments(backend, make_export):
    ProfileFactory()
    segment = SegmentFactory(name="Lapsed")
    export = make_export(segment, schedule_enabled=True)
    segment_set_active(segment=segment, active=False)
    outcome = run_refresh_chain()
    assert (outcome["segments_refreshed"], outcome["exports_skipped"]) == (0, 1)
    run = export.runs.get()
    assert (run.status, "is inactive" in shown(run.last_error)) == (ExportRun.Status.SKIPPED, True)
