from django.db import migrations


class Migration(migrations.Migration):
    """The e-mail, first name and last name are mapping rows now (0016): one source of truth."""

    dependencies = [
        ("exports", "0017_builtin_fields_as_mapping_rows"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="export",
            name="email_field",
        ),
        migrations.RemoveField(
            model_name="export",
            name="first_name_field",
        ),
        migrations.RemoveField(
            model_name="export",
            name="last_name_field",
        ),
    ]
