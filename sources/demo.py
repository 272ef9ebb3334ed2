"""The demo's source: a Parquet file of loyalty data written with DuckDB, so that the flow
(preview, map, run, the report) can be clicked through without any database server."""

from __future__ import annotations

from pathlib import Path

import duckdb

from sources import services
from sources.models import Source

DEMO_SOURCE_NAME = "Loyalty warehouse (demo file)"
#: The demo profiles' customer ids are cust-0000001 and up (segments/demo.py): the file gives
#: the first of them loyalty data, with a few rows the run rejects, to show the report.
DEMO_ROWS = 2_000


def write_demo_file(path: Path, rows: int = DEMO_ROWS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(":memory:")
    try:
        connection.execute(
            f"""
            COPY (
                SELECT CASE WHEN n % 500 = 0 THEN NULL
                            ELSE printf('cust-%07d', n) END AS customer_id,
                       ['bronze', 'silver', 'gold'][1 + n % 3] AS loyalty_tier,
                       round(n * 3.7 % 1000, 2)::DECIMAL(10, 2) AS lifetime_value,
                       n % 4 <> 0 AS newsletter_opt_in,
                       DATE '2024-01-01' + CAST(n % 700 AS INTEGER) AS member_since,
                       TIMESTAMP '2026-01-01 00:00:00' + to_minutes(n) AS updated_at
                FROM range(1, {int(rows) + 1}) AS numbers(n)
            ) TO '{str(path).replace("'", "''")}' (FORMAT parquet)
            """
        )
    finally:
        connection.close()


def demo_source_create(path: Path) -> Source:
    """Write the file and add the source (or bring it back as the demo had it)."""
    write_demo_file(path)
    existing = Source.objects.filter(name=DEMO_SOURCE_NAME).first()
    return services.source_save(
        source=existing,
        name=DEMO_SOURCE_NAME,
        kind="file",
        connection_settings={"path": str(path), "file_format": "parquet"},
        mapping={
            "customer_id": "customer_id",
            "attributes": {
                "loyalty_tier": "loyalty_tier",
                "lifetime_value": "lifetime_value",
                "newsletter_opt_in": "newsletter_opt_in",
                "member_since": "member_since",
            },
        },
        field_types={
            "loyalty_tier": "text",
            "lifetime_value": "number",
            "newsletter_opt_in": "boolean",
            "member_since": "date",
        },
        sync_mode=Source.SyncMode.INCREMENTAL,
        cursor_column="updated_at",
    )
