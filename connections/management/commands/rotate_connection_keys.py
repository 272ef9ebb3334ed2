from __future__ import annotations

from django.core.management.base import BaseCommand

from connections.services import credentials_reencrypt_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every connection's secrets with the newest key in FIELD_ENCRYPTION_KEY. "
        "Run it after putting a new key first; remove the old key only afterwards."
    )

    def handle(self, *args, **options):
        count = credentials_reencrypt_all()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the secrets of {count} connections."))
