from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.roles import Role
from accounts.services import LastAdministrator, user_create_or_update


class Command(BaseCommand):
    help = "Create a user with a role, or change an existing user's role and password."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument(
            "--password", help="Without it the user cannot log in until one is set."
        )
        parser.add_argument("--email", default="")

    def handle(self, *args, username: str, role: str, password: str | None, email: str, **options):
        try:
            user, created = user_create_or_update(
                username=username, role=Role(role), password=password, email=email
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        except LastAdministrator as error:
            raise CommandError(str(error.message)) from error
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {user.username} ({Role(role).label})"))
