"""A column that PostgreSQL's CSV import alone reads and writes (not a model field, so that no
ORM write can set it): the hash of the file line that last wrote the profile
(``segments.importing``). A trigger clears it on any other update, so an unchanged line is
skipped only while the profile is still what that line made it."""

from django.db import migrations

PG_CREATE = [
    "ALTER TABLE segments_profile ADD COLUMN import_line_hash bigint",
    """CREATE FUNCTION segments_profile_forget_line_hash() RETURNS trigger AS $$
BEGIN
    NEW.import_line_hash := NULL;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql""",
    # Only an update that does not set the hash itself: the import's writes set it (or clear
    # it), every other writer leaves it as it was and so clears it.
    """CREATE TRIGGER segments_profile_line_hash BEFORE UPDATE ON segments_profile
    FOR EACH ROW WHEN (OLD.import_line_hash IS NOT NULL
                       AND NEW.import_line_hash IS NOT DISTINCT FROM OLD.import_line_hash)
    EXECUTE FUNCTION segments_profile_forget_line_hash()""",
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS segments_profile_line_hash ON segments_profile",
    "DROP FUNCTION IF EXISTS segments_profile_forget_line_hash()",
    "ALTER TABLE segments_profile DROP COLUMN IF EXISTS import_line_hash",
]


def create_column(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # SQLite imports compare every row
        for statement in PG_CREATE:
            schema_editor.execute(statement, params=None)


def drop_column(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in PG_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("segments", "0007_profile_field_origins"),
    ]

    operations = [
        migrations.RunPython(create_column, drop_column),
    ]
