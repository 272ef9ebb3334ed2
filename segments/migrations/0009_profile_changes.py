"""The log of changed profiles (``segments.changes``): triggers on the profiles and the segment
memberships log, per statement, the profiles each write touched and the transaction that wrote
them. Inserted profiles are not logged: a new profile is nobody's member until its membership
is written, which is. A statement that touches more than 100,000 rows logs one row without a
profile id instead (any profile may have changed): a segment's first refresh or a whole
re-import costs one row, not a million."""

from django.db import migrations, models

# One function per table (the profile's id is ``id`` in one and ``profile_id`` in the other).
# Each trigger names its transition table ``changed_rows`` (an update's old rows ``old_rows``):
# an update logs the old id too, should a hand have changed it.
FUNCTION = """CREATE FUNCTION {function}() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO segments_profilechange (profile_id, transaction_id)
        VALUES (NULL, pg_current_xact_id()::text::bigint);
    ELSIF (SELECT count(*) FROM (SELECT FROM changed_rows LIMIT 100001) listed) > 100000 THEN
        INSERT INTO segments_profilechange (profile_id, transaction_id)
        VALUES (NULL, pg_current_xact_id()::text::bigint);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO segments_profilechange (profile_id, transaction_id)
        SELECT {column}, pg_current_xact_id()::text::bigint
        FROM (SELECT {column} FROM changed_rows UNION SELECT {column} FROM old_rows) written;
    ELSE
        INSERT INTO segments_profilechange (profile_id, transaction_id)
        SELECT {column}, pg_current_xact_id()::text::bigint FROM changed_rows;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql"""

TABLES = {
    # table: (function, the profile's id, the events logged)
    "segments_profile": ("segments_log_profile_changes", "id", ("UPDATE", "DELETE")),
    "segments_segmentmember": (
        "segments_log_member_changes",
        "profile_id",
        ("INSERT", "UPDATE", "DELETE"),
    ),
}
TRANSITIONS = {
    "INSERT": "NEW TABLE AS changed_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS changed_rows",
    "DELETE": "OLD TABLE AS changed_rows",
}


def _create(table: str, function: str, column: str, events: tuple[str, ...]) -> list[str]:
    statements = [FUNCTION.format(function=function, column=column)]
    for event in events:
        statements.append(
            f"CREATE TRIGGER {table}_log_{event.lower()} AFTER {event} ON {table}"
            f" REFERENCING {TRANSITIONS[event]} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    statements.append(
        f"CREATE TRIGGER {table}_log_truncate AFTER TRUNCATE ON {table}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )
    return statements


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # only PostgreSQL computes a run from what changed
    for table, (function, column, events) in TABLES.items():
        for statement in _create(table, function, column, events):
            schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, (function, _column, events) in TABLES.items():
        for event in (*events, "TRUNCATE"):
            schema_editor.execute(
                f"DROP TRIGGER IF EXISTS {table}_log_{event.lower()} ON {table}", params=None
            )
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}()", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0008_profile_import_line_hash"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProfileChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("profile_id", models.BigIntegerField(null=True)),
                ("transaction_id", models.BigIntegerField(db_index=True)),
            ],
            options={
                "verbose_name": "profile change",
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
