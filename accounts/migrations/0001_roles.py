from __future__ import annotations

from django.db import migrations

from accounts.roles import Role, grant_permissions

VIEWER = ["segments.view_profile", "segments.view_segment"]
CONTRIBUTOR = [
    *VIEWER,
    "segments.add_segment",
    "segments.change_segment",
    "segments.delete_segment",
    "segments.refresh_segment",
]
ADMINISTRATOR = [*CONTRIBUTOR, "segments.import_profiles"]


def create_role_groups(apps, schema_editor):
    grant_permissions(
        apps,
        {Role.VIEWER: VIEWER, Role.CONTRIBUTOR: CONTRIBUTOR, Role.ADMINISTRATOR: ADMINISTRATOR},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("segments", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
