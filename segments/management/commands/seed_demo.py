from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.roles import Role
from accounts.services import user_create_or_update
from segments.demo import ATTRIBUTE_TYPES, SEGMENTS, demo_profiles
from segments.importing import import_records
from segments.models import Segment
from segments.services import segment_refresh

DEMO_USERS = [
    ("admin", Role.ADMINISTRATOR, "demo-admin-relay"),
    ("contributor", Role.CONTRIBUTOR, "demo-contributor-relay"),
    ("viewer", Role.VIEWER, "demo-viewer-relay"),
]


class Command(BaseCommand):
    help = "Create the demo users (one per role), demo profiles and three segments. Safe to re-run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--profiles", type=int, default=10_000)

    def handle(self, *args, profiles: int, **options) -> None:
        # The demo passwords are published in the README: on a real installation this would
        # give anyone its administrator (an existing "admin" user's password is reset too).
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo runs only with DEBUG on: it sets the demo users' published passwords "
                "and adds demo profiles, which must never happen on a real installation."
            )
        for username, role, password in DEMO_USERS:
            user_create_or_update(username=username, role=role, password=password)
        started = time.monotonic()
        report = import_records(demo_profiles(profiles), ATTRIBUTE_TYPES)
        self.stdout.write(
            f"{report.rows_read} demo profiles in {time.monotonic() - started:.1f}s "
            f"({report.created} created, {report.updated} updated)"
        )
        admin = User.objects.get(username="admin")
        for name, description, rules in SEGMENTS:
            segment, _created = Segment.objects.get_or_create(
                name=name,
                defaults={"description": description, "rules": rules, "created_by": admin},
            )
            segment = segment_refresh(segment_id=segment.pk)
            self.stdout.write(f"Segment “{segment.name}”: {segment.member_count} members")
