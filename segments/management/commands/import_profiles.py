from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from segments.importing import ColumnMap, ImportFileError, import_csv, warning_message

SHOWN_REJECTIONS = 100
SHOWN_WARNINGS = 100


class Command(BaseCommand):
    help = (
        "Import profiles from a UTF-8 CSV file with a header row, upserting by customer id. "
        "Malformed rows are reported and skipped; exits non-zero only if nothing was imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        defaults = ColumnMap()
        parser.add_argument("--id-column", default=defaults.customer_id)
        parser.add_argument("--email-column", default=defaults.email)
        parser.add_argument("--first-name-column", default=defaults.first_name)
        parser.add_argument("--last-name-column", default=defaults.last_name)

    def handle(self, *args, path: Path, **options) -> None:
        column_map = ColumnMap(
            customer_id=options["id_column"],
            email=options["email_column"],
            first_name=options["first_name_column"],
            last_name=options["last_name_column"],
        )
        started = time.monotonic()
        try:
            with path.open("rb") as stream:
                report = import_csv(stream, column_map)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}") from error
        except ImportFileError as error:
            raise CommandError(str(error)) from error
        elapsed = time.monotonic() - started

        for row in report.rejected_rows[:SHOWN_REJECTIONS]:
            self.stderr.write(f"line {row.line}: {row.reason}")
        if report.rejected > SHOWN_REJECTIONS:
            self.stderr.write(f"... and {report.rejected - SHOWN_REJECTIONS} more rejected rows")
        for warning in report.warnings[:SHOWN_WARNINGS]:
            self.stderr.write(f"line {warning.line}: {warning.field}: {warning_message(warning)}")
        if report.warned > SHOWN_WARNINGS:
            self.stderr.write(f"... and {report.warned - SHOWN_WARNINGS} more warnings")
        self.stdout.write(
            f"{report.rows_read} rows read in {elapsed:.1f}s: {report.created} created, "
            f"{report.updated} updated, {report.unchanged} unchanged, {report.rejected} rejected,"
            f" {report.warned} warnings"
        )
        if report.imported == 0:
            raise CommandError("No row could be imported.")
