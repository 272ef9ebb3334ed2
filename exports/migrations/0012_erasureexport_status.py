"""Each export of an erasure says where deleting the person stands: pending, confirmed or
failed (with the reason); an erased address's sync state says it is being deleted. Existing records: confirmed when they have a confirmation time,
pending otherwise (a refusal used to leave them pending for the next run)."""

from django.db import migrations, models


def set_status(apps, schema_editor):
    ErasureExport = apps.get_model("exports", "ErasureExport")
    ErasureExport.objects.filter(confirmed_at__isnull=False).update(status="confirmed")


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0011_erasure_moved_here"),
        ("api", "0002_erasure_moved_to_exports"),
    ]

    operations = [
        migrations.AddField(
            model_name="erasureexport",
            name="status",
            field=models.CharField(
                choices=[("pending", "Pending"), ("confirmed", "Confirmed"), ("failed", "Failed")],
                default="pending",
                max_length=10,
            ),
        ),
        migrations.RunPython(set_status, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="syncstate",
            name="state",
            field=models.CharField(
                choices=[
                    ("in_list", "In the list"),
                    ("opted_out", "Opted out at the service"),
                    ("removed", "Removed by a mirror run"),
                    ("erasing", "Erased: being deleted at the service"),
                ],
                default="in_list",
                max_length=10,
            ),
        ),
    ]
