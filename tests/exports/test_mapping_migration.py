"""Migrations 0016-0018: each export's e-mail, first and last name fields become rows of its
mapping, and the export sends exactly what it sent before."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("exports", "0015_exclusions")]
AFTER = [("exports", "0018_remove_export_builtin_field_columns")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def back_to_the_latest_migrations():
    """The tests after this one expect the database at its latest migrations again."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_exports_map_what_they_sent_before_in_the_same_order():
    old = migrate(BEFORE)
    Export = old.get_model("exports", "Export")
    full = Export.objects.create(
        display_name="Full", list_id="a", first_name_field="given", last_name_field="family"
    )
    plain = Export.objects.create(display_name="Plain", list_id="b", email_field="work_email")

    new = migrate(AFTER)

    FieldMapping = new.get_model("exports", "FieldMapping")

    def rows(export):
        return list(
            FieldMapping.objects.filter(export_id=export.pk)
            .order_by("position")
            .values_list("profile_field", "destination_key", "destination_type", "when_empty")
        )

    assert rows(full) == [
        ("email", "email", "text", "leave"),
        ("given", "first_name", "text", "leave"),
        ("family", "last_name", "text", "leave"),
    ]
    assert rows(plain) == [("work_email", "email", "text", "leave")]


def test_the_migration_can_be_undone_with_the_columns_as_they_were():
    old = migrate(BEFORE)
    Export = old.get_model("exports", "Export")
    export = Export.objects.create(display_name="Full", list_id="a", first_name_field="given")
    migrate(AFTER)

    back = migrate(BEFORE)

    restored = back.get_model("exports", "Export").objects.get(pk=export.pk)
    assert (restored.email_field, restored.first_name_field, restored.last_name_field) == (
        "email",
        "given",
        "",
    )
