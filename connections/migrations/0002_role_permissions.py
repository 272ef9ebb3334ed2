from __future__ import annotations

from django.db import migrations

from accounts.roles import Role, grant_permissions

# product.md, Roles: administrators add, edit, remove and share connections; contributors use the
# connections shared with contributors and see only their name and type; viewers get none.
CONTRIBUTOR = ["connections.use_connection"]
ADMINISTRATOR = [
    *CONTRIBUTOR,
    "connections.add_connection",
    "connections.change_connection",
    "connections.delete_connection",
    "connections.view_connection",
]


def grant_connection_permissions(apps, schema_editor):
    grant_permissions(apps, {Role.CONTRIBUTOR: CONTRIBUTOR, Role.ADMINISTRATOR: ADMINISTRATOR})


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_roles"),
        ("connections", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant_connection_permissions, migrations.RunPython.noop)]
