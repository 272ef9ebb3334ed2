"""The catalogue of profile fields: which exist, their type, and how many profiles have one."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q

from segments.models import Profile, ProfileField
from segments.rules import BUILTIN_FIELDS


@transaction.atomic
def refresh_field_catalogue(attribute_types: dict[str, str], *, recount: bool = True) -> None:
    """Record the attributes just imported (with their inferred types) and recount every field.

    A field seen with two different types becomes text (dates and date-times: date-time).
    One aggregate query counts them all; ``recount=False`` leaves the counts for later
    (``recount_fields``): the API's bulk upserts come 10,000 profiles at a time, and recounting
    a million after each would cost more than the upsert.
    """
    for name in BUILTIN_FIELDS:
        ProfileField.objects.get_or_create(name=name, defaults={"is_builtin": True})
    for name, data_type in attribute_types.items():
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


def recount_fields() -> None:
    """How many profiles have a value in each field, in one aggregate query."""
    fields = list(ProfileField.objects.all())
    counts = Profile.objects.aggregate(
        **{
            f"field_{index}": Count(
                "id",
                filter=~Q(**{field.name: ""})
                if field.is_builtin
                else Q(attributes__has_key=field.name),
            )
            for index, field in enumerate(fields)
        }
    )
    for index, field in enumerate(fields):
        field.profile_count = counts[f"field_{index}"]
    ProfileField.objects.bulk_update(fields, ["profile_count"])


def _merged_type(old: str, new: str) -> str:
    dates = {ProfileField.DataType.DATE, ProfileField.DataType.DATETIME}
    if {old, new} <= dates:
        return ProfileField.DataType.DATETIME
    return ProfileField.DataType.TEXT
