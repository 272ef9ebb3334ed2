from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sources.demo import demo_source_create


class Command(BaseCommand):
    help = "Write the demo's Parquet file and add the demo source that reads it. Safe to re-run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--path", default=str(Path(settings.BASE_DIR) / "demo-data" / "loyalty.parquet")
        )

    def handle(self, *args, path: str, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("seed_demo_source runs only with DEBUG on (the demo).")
        source = demo_source_create(Path(path))
        self.stdout.write(f"Demo source “{source.name}” reads {path}.")
