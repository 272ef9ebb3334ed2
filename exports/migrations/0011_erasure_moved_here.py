"""Erasures move from the API app to exports, which owns forgetting an address at every list.

State only: the tables keep their names (``api_erasure``, ``api_erasureexport``) and their rows;
``api.0002_erasure_moved_to_exports`` removes the models from the API app's state.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0010_nothing_changed"),
        ("api", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Erasure",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "requested_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="requested"),
                        ),
                        (
                            "erased_by",
                            models.CharField(
                                choices=[("customer_id", "customer id"), ("email", "email")],
                                max_length=20,
                                verbose_name="erased by",
                            ),
                        ),
                        ("address_hash", models.CharField(db_index=True, max_length=64)),
                        ("profiles_erased", models.PositiveIntegerField(default=0)),
                        ("memberships_erased", models.PositiveIntegerField(default=0)),
                        (
                            "requested_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "api_erasure", "ordering": ["-requested_at", "-id"]},
                ),
                migrations.CreateModel(
                    name="ErasureExport",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("export_name", models.CharField(max_length=200)),
                        ("encrypted_address", models.TextField(blank=True, default="")),
                        ("confirmed_at", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.TextField(blank=True, default="")),
                        (
                            "confirmed_by_run",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="exports.exportrun",
                            ),
                        ),
                        (
                            "erasure",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="exports",
                                to="exports.erasure",
                            ),
                        ),
                        (
                            "export",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="exports.export",
                            ),
                        ),
                    ],
                    options={"db_table": "api_erasureexport", "ordering": ["id"]},
                ),
            ],
            database_operations=[],
        ),
    ]
