"""The demo's source: a Parquet file it writes, read without any server."""

from __future__ import annotations

import pytest

from segments.models import Profile
from sources import services
from sources.demo import demo_source_create
from sources.models import Source, SourceRun

pytestmark = pytest.mark.django_db


def test_the_demo_source_reads_its_file_and_lists_the_rows_it_rejects(tmp_path):
    source = demo_source_create(tmp_path / "loyalty.parquet")
    assert demo_source_create(tmp_path / "loyalty.parquet") == source  # safe to re-run
    run = services.run_execute(
        run_id=SourceRun.objects.create(source=source, sync_mode=source.sync_mode).pk
    )
    assert (run.status, run.rows_read, run.created_count, run.rejected_count) == (
        "completed_with_errors",
        2000,
        1996,
        4,
    )
    assert Profile.objects.get(customer_id="cust-0000003").attributes == {
        "loyalty_tier": "bronze",
        "lifetime_value": 11.1,
        "newsletter_opt_in": "true",
        "member_since": "2024-01-04",
    }
    assert Source.objects.count() == 1
