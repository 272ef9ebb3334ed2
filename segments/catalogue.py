"""The catalogue of profile fields: which exist, their type, and how many profiles have one.

Profiles may have at most ``settings.PROFILE_FIELDS_MAX`` attribute fields besides the four
built-in ones. Every way profiles come in (the CSV import, the API's bulk upsert, the demo
seeder, and profile sources when they come) stores them inside ``fields_admitted`` with the
attribute names it is about to store, which refuses (``TooManyFields``) before anything is
stored; ``check_field_limit`` is the same check for a look ahead (the upload page).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Q
from django.utils.translation import ngettext

from segments.models import Profile, ProfileField
from segments.rules import BUILTIN_FIELDS

#: How many of the new fields' names a refusal shows.
SHOWN_NEW_FIELDS = 5


class TooManyFields(ValueError):
    """Storing these attributes would take the catalogue over ``PROFILE_FIELDS_MAX`` fields;
    the message says so in words a marketer understands."""

    def __init__(self, *, limit: int, existing: int, new: list[str]):
        self.limit, self.existing, self.new = limit, existing, new
        examples = ", ".join(f"“{name}”" for name in new[:SHOWN_NEW_FIELDS])
        if len(new) > SHOWN_NEW_FIELDS:
            examples += ", …"
        super().__init__(
            ngettext(
                "Profiles can have at most %(limit)d custom fields. %(existing)d exist, and this "
                "would add %(new)d new one (%(examples)s). Nothing was imported. Leave out the "
                "fields you do not need, or ask an administrator to raise the limit "
                "(PROFILE_FIELDS_MAX).",
                "Profiles can have at most %(limit)d custom fields. %(existing)d exist, and this "
                "would add %(new)d new ones (%(examples)s). Nothing was imported. Leave out the "
                "fields you do not need, or ask an administrator to raise the limit "
                "(PROFILE_FIELDS_MAX).",
                len(new),
            )
            % {"limit": limit, "existing": existing, "new": len(new), "examples": examples}
        )


def check_field_limit(names: Iterable[str]) -> None:
    """Raise ``TooManyFields`` when storing attributes named ``names`` would make more than
    ``PROFILE_FIELDS_MAX`` attribute fields in the catalogue; names already there cost
    nothing, so a catalogue already over a lowered limit still takes the fields it has.
    A look before the work (the upload page); storing goes through ``fields_admitted``."""
    wanted = set(names).difference(BUILTIN_FIELDS)
    limit = settings.PROFILE_FIELDS_MAX
    custom = ProfileField.objects.filter(is_builtin=False)
    if not wanted or custom.count() + len(wanted) <= limit:
        return
    known = set(custom.values_list("name", flat=True))
    new = sorted(wanted - known)
    if new and len(known) + len(new) > limit:
        raise TooManyFields(limit=limit, existing=len(known), new=new)


@contextmanager
def fields_admitted(names: Iterable[str]) -> Iterator[None]:
    """``check_field_limit``, kept true while the block stores the profiles and records their
    fields in the catalogue: on PostgreSQL, a block that adds fields holds a lock from its
    check to its end, so two imports at the same moment cannot both take the last places.
    A block that adds no field (the usual import) takes no lock."""
    wanted = set(names).difference(BUILTIN_FIELDS)
    if wanted <= set(ProfileField.objects.values_list("name", flat=True)):
        yield
        return
    with _catalogue_growth_lock():
        check_field_limit(wanted)
        yield


#: The advisory lock taken by imports that add fields ("prof" in ASCII).
_GROWTH_LOCK = 0x70726F66


@contextmanager
def _catalogue_growth_lock() -> Iterator[None]:
    if connection.vendor != "postgresql":  # SQLite writes one transaction at a time anyway
        yield
        return
    if connection.in_atomic_block:  # held until the catalogue's new rows are committed
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_GROWTH_LOCK])
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_GROWTH_LOCK])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_GROWTH_LOCK])
        except DatabaseError:
            pass  # the connection is lost, and the lock with it: do not hide the first error


@transaction.atomic
def refresh_field_catalogue(attribute_types: dict[str, str], *, recount: bool = True) -> None:
    """Record the attributes just imported (with their inferred types) and recount every field.

    A field seen with two different types becomes text (dates and date-times: date-time).
    ``recount=False`` leaves the counts for later (``recount_fields``): the API's bulk
    upserts come 10,000 profiles at a time, and recounting a million after each would cost
    more than the upsert. Callers store inside ``fields_admitted``, which keeps to the limit.
    """
    # One query for the fields already there (every batch of a source's run asks again).
    known = {
        field.name: field
        for field in ProfileField.objects.filter(name__in=[*BUILTIN_FIELDS, *attribute_types])
    }
    for name in BUILTIN_FIELDS:
        if name not in known:
            ProfileField.objects.get_or_create(name=name, defaults={"is_builtin": True})
    for name, data_type in attribute_types.items():
        created = False
        existing = known.get(name)
        if existing is None:
            existing, created = ProfileField.objects.get_or_create(
                name=name, defaults={"data_type": data_type}
            )
        if not created and existing.data_type != data_type and existing.profile_count:
            existing.data_type = _merged_type(existing.data_type, data_type)
            existing.save(update_fields=["data_type", "updated_at"])
        elif not created and existing.data_type != data_type:
            existing.data_type = data_type
            existing.save(update_fields=["data_type", "updated_at"])
    if recount:
        recount_fields()


#: Profiles per attribute name, one row per name: a statement whose width does not grow with
#: the number of fields (one column per field went over PostgreSQL's 1,664 columns). Attributes
#: are always an object (the import's upsert relies on it too), so no row is checked for it:
#: that check cost as much as the count.
_ATTRIBUTE_COUNTS = {
    "postgresql": """
        SELECT name, count(*) FROM {table}
        CROSS JOIN LATERAL jsonb_object_keys({table}.attributes) AS name
        GROUP BY name""",
    "sqlite": """
        SELECT entry.key, count(*) FROM {table}, json_each({table}.attributes) AS entry
        GROUP BY entry.key""",
}


def recount_fields() -> None:
    """How many profiles have a value in each field: the built-in ones in one aggregate, the
    attributes in one set-based query over the profiles' keys, grouped by key (an attribute
    is only stored with a value, so a key is a value)."""
    table = Profile._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(_ATTRIBUTE_COUNTS[connection.vendor].format(table=table))
        counts = dict(cursor.fetchall())
    counts.update(
        Profile.objects.aggregate(
            **{name: Count("id", filter=~Q(**{name: ""})) for name in BUILTIN_FIELDS}
        )
    )
    changed = []
    for field in ProfileField.objects.all():
        count = counts.get(field.name, 0)
        if field.profile_count != count:
            field.profile_count = count
            changed.append(field)
    ProfileField.objects.bulk_update(changed, ["profile_count"], batch_size=1_000)


def _merged_type(old: str, new: str) -> str:
    dates = {ProfileField.DataType.DATE, ProfileField.DataType.DATETIME}
    if {old, new} <= dates:
        return ProfileField.DataType.DATETIME
    return ProfileField.DataType.TEXT


def field_label(name: str) -> str:
    """A field as people read it: a built-in field's own label ("Customer id"), an attribute's
    name with its underscores as spaces ("signup_date": "Signup date"). A name in capitals or
    with other signs is shown as it is: it may be a code that people know by its spelling."""
    if name in BUILTIN_FIELDS:
        label = str(Profile._meta.get_field(name).verbose_name)
    elif _SNAKE_CASE.fullmatch(name):
        label = name.replace("_", " ").strip()
    else:
        return name
    return label[:1].upper() + label[1:]


_SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")
