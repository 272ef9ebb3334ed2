from __future__ import annotations

from django.db import migrations

from accounts.roles import Role, grant_permissions

VIEWER = ["exports.view_export", "exports.view_status"]
CONTRIBUTOR = [
    *VIEWER,
    "exports.add_export",
    "exports.change_export",
    "exports.delete_export",
    "exports.run_export",
]


ADMINISTRATOR = [*CONTRIBUTOR, "exports.change_schedule"]


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        {Role.VIEWER: VIEWER, Role.CONTRIBUTOR: CONTRIBUTOR, Role.ADMINISTRATOR: ADMINISTRATOR},
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_roles"), ("exports", "0001_initial")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
