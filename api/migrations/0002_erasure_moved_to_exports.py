"""Erasures moved to exports (``exports.0011_erasure_moved_here``): state only, the tables and
their rows stay as they are."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("exports", "0011_erasure_moved_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ErasureExport"),
                migrations.DeleteModel(name="Erasure"),
            ],
            database_operations=[],
        ),
    ]
