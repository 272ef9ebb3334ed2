"""Each export's e-mail, first name and last name fields become rows of its mapping, with the
keys of the services' built-in fields: the export sends exactly what it sent before."""

from django.db import migrations

BUILTINS = (
    ("email_field", "email", "Email"),
    ("first_name_field", "first_name", "First name"),
    ("last_name_field", "last_name", "Last name"),
)


def columns_to_rows(apps, schema_editor):
    Export = apps.get_model("exports", "Export")
    FieldMapping = apps.get_model("exports", "FieldMapping")
    rows = []
    for export in Export.objects.order_by("pk").iterator():
        position = 0
        for column, key, name in BUILTINS:
            profile_field = getattr(export, column)
            if column == "email_field":
                profile_field = profile_field or "email"
            if not profile_field:
                continue
            rows.append(
                FieldMapping(
                    export_id=export.pk,
                    position=position,
                    profile_field=profile_field,
                    destination_key=key,
                    destination_name=name,
                    destination_type="text",
                    when_empty="leave",
                )
            )
            position += 1
    FieldMapping.objects.bulk_create(rows, batch_size=1000)


def rows_to_columns(apps, schema_editor):
    Export = apps.get_model("exports", "Export")
    FieldMapping = apps.get_model("exports", "FieldMapping")
    by_export: dict = {}
    for row in FieldMapping.objects.filter(destination_key__in=[key for _c, key, _n in BUILTINS]):
        by_export.setdefault(row.export_id, {})[row.destination_key] = row.profile_field
    for export in Export.objects.order_by("pk").iterator():
        mapped = by_export.get(export.pk, {})
        export.email_field = mapped.get("email", "email")
        export.first_name_field = mapped.get("first_name", "")
        export.last_name_field = mapped.get("last_name", "")
        export.save(update_fields=["email_field", "first_name_field", "last_name_field"])


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0016_field_mapping"),
    ]

    operations = [migrations.RunPython(columns_to_rows, rows_to_columns)]
