from __future__ import annotations

from django.db import migrations

from accounts.roles import Role, grant_permissions

# Issue 25: administrators add, change, remove and run sources; contributors and viewers see
# their names and status only.
VIEWER = ["sources.view_source"]
ADMINISTRATOR = [
    *VIEWER,
    "sources.add_source",
    "sources.change_source",
    "sources.delete_source",
    "sources.run_source",
]


def grant_source_permissions(apps, schema_editor):
    grant_permissions(
        apps,
        {Role.VIEWER: VIEWER, Role.CONTRIBUTOR: VIEWER, Role.ADMINISTRATOR: ADMINISTRATOR},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_roles"),
        ("sources", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant_source_permissions, migrations.RunPython.noop)]
