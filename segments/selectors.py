"""Reads on profiles and segments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils.translation import gettext as _

from core.listing import Sorting, search_words
from segments.importing import (
    warning_from_stored,
    warning_message,
    warning_outcome,
    warning_problem,
)
from segments.models import (
    Profile,
    ProfileField,
    ProfileImport,
    Segment,
    SegmentMember,
    SegmentRefresh,
)
from segments.origins import origin_labels
from segments.rules import BUILTIN_FIELDS

KEYSET_PAGE = 5_000
SHOWN_IMPORT_PROBLEMS = 500


#: Data > Segments' columns that sort.
SEGMENT_SORTING = Sorting(
    keys={
        "name": ("name",),
        "members": ("member_count", "name"),
        "refreshed": ("last_refreshed_at",),
        "status": ("status", "name"),
    },
    default="name",
    nullable=frozenset({"last_refreshed_at"}),
)

#: Data > Profiles' columns that sort (customer id and last change are indexed).
PROFILE_SORTING = Sorting(
    keys={
        "customer_id": ("customer_id",),
        "email": ("email",),
        "first_name": ("first_name",),
        "last_name": ("last_name",),
        "updated": ("updated_at",),
    },
    default="customer_id",
)


def segment_search(*, query: str = "", sort: str = "") -> QuerySet[Segment]:
    """Data > Segments: those whose name or description contains every word of ``query``."""
    segments = Segment.objects.all()
    for word in search_words(query):
        segments = segments.filter(Q(name__icontains=word) | Q(description__icontains=word))
    return SEGMENT_SORTING.apply(segments, sort)


def profile_search(query: str, sort: str = "") -> QuerySet[Profile]:
    """Profiles with every word of ``query`` in their e-mail or name, or as their customer id."""
    profiles = Profile.objects.all()
    for term in search_words(query):
        profiles = profiles.filter(
            Q(email__icontains=term)
            | Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
            | Q(customer_id=term)
        )
    return PROFILE_SORTING.apply(profiles, sort)


def import_problems(profile_import: ProfileImport) -> dict[str, list[dict]]:
    """The first rejected rows and warnings of an import, as the report page lists them; each
    warning names its field by the field's label, in the reader's language."""
    warnings = [
        {
            **warning,
            "field": Profile._meta.get_field(warning["field"]).verbose_name,
            "message": warning_message(warning_from_stored(warning)),
        }
        for warning in profile_import.warnings[:SHOWN_IMPORT_PROBLEMS]
    ]
    return {"rejected": profile_import.rejected_rows[:SHOWN_IMPORT_PROBLEMS], "warnings": warnings}


def import_problems_table(
    profile_import: ProfileImport,
) -> tuple[str, list[str], Iterator[list[object]]]:
    """**Download the problem rows** of an import: every listed rejected row and warning, in
    line order, as a CSV's name, header and rows in the reader's language. Bounded by what
    an import lists (``MAX_LISTED_REJECTIONS`` and ``MAX_LISTED_WARNINGS`` rows)."""
    rejected = _("Not imported: correct the row and import it again.")
    labels = {name: str(Profile._meta.get_field(name).verbose_name) for name in BUILTIN_FIELDS}
    problems: list[tuple[int, list[object]]] = []
    for row in profile_import.rejected_rows:
        customer_id = row.get("customer_id", "")
        problems.append((row["line"], [row["line"], customer_id, "", row["reason"], rejected]))
    for stored in profile_import.warnings:
        warning = warning_from_stored(stored)
        label = labels.get(warning.field, warning.field)
        problems.append(
            (
                warning.line,
                [
                    warning.line,
                    warning.customer_id,
                    label[:1].upper() + label[1:],
                    warning_problem(warning),
                    warning_outcome(warning),
                ],
            )
        )
    problems.sort(key=lambda problem: problem[0])
    header = [_("Line"), _("Customer id"), _("Field"), _("Problem"), _("What happens")]
    return (
        f"import-{profile_import.pk}-problem-rows.csv",
        [str(name) for name in header],
        (row for _line, row in problems),
    )


def profile_count() -> int:
    """How many profiles there are (what a segment's estimate is a share of)."""
    return Profile.objects.count()


def field_names() -> list[str]:
    return list(ProfileField.objects.values_list("name", flat=True))


def field_types() -> dict[str, str]:
    """Every catalogued field and its type; built-in fields are text."""
    return dict(ProfileField.objects.values_list("name", "data_type"))


def segment_ids() -> list[int]:
    return list(Segment.objects.values_list("pk", flat=True))


def segment_preview(segment: Segment) -> QuerySet[Profile]:
    """The first members, in a stable order."""
    return Profile.objects.filter(
        pk__in=SegmentMember.objects.filter(segment=segment).values("profile_id")
    ).order_by("id")[: settings.SEGMENT_PREVIEW_SIZE]


def segment_members_in_pages(segment: Segment, page_size: int = KEYSET_PAGE) -> Iterator[Profile]:
    """Every member, read with keyset pagination so memory stays flat for any segment size."""
    last_id = 0
    while True:
        page = list(
            Profile.objects.filter(
                pk__in=SegmentMember.objects.filter(segment=segment, profile_id__gt=last_id).values(
                    "profile_id"
                ),
            ).order_by("id")[:page_size]
        )
        if not page:
            return
        yield from page
        last_id = page[-1].pk


def segment_members(segment: Segment) -> QuerySet[Profile]:
    """Every member (unordered: the caller pages it)."""
    return Profile.objects.filter(
        pk__in=SegmentMember.objects.filter(segment=segment).values("profile_id")
    )


def segment_members_table(segment: Segment) -> tuple[str, list[str], Iterator[list[object]]]:
    """Every member as a CSV file, one column per profile field (the built-in ones, then every
    catalogued attribute by name): its name, its header and its rows, read page by page as they
    are written (the segment page's download and the API's ``members.csv``)."""
    attributes = sorted(
        ProfileField.objects.exclude(name__in=BUILTIN_FIELDS).values_list("name", flat=True)
    )
    rows = (
        [
            profile.customer_id,
            profile.email,
            profile.first_name,
            profile.last_name,
            *(_cell(profile.attributes.get(name)) for name in attributes),
        ]
        for profile in segment_members_in_pages(segment)
    )
    return (f"segment-{segment.pk}-members.csv", [*BUILTIN_FIELDS, *attributes], rows)


def _cell(value: object) -> object:
    """An attribute as a CSV cell: text and numbers as they are, true/false as words, lists
    and objects as JSON, nothing as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def segment_members_page(
    segment: Segment, *, query: str = "", after_id: int = 0, size: int = 50
) -> tuple[list[Profile], int | None]:
    """One page of members (by profile id, after ``after_id``), those whose customer id or
    e-mail starts with ``query`` when one is given; and where the next page starts, if any."""
    members = segment_members(segment).filter(pk__gt=after_id).order_by("id")
    if query:
        members = members.filter(Q(customer_id__istartswith=query) | Q(email__istartswith=query))
    page = list(members[: size + 1])
    if len(page) > size:
        return page[:size], page[size - 1].pk
    return page, None


def segments_refreshing() -> bool:
    return Segment.objects.exclude(refresh_state=Segment.RefreshState.IDLE).exists()


def segment_names() -> dict[int, str]:
    return dict(Segment.objects.values_list("pk", "name"))


HISTORY_POINTS = 60
SPARKLINE_POINTS = 20


def segment_history(segment: Segment, limit: int = HISTORY_POINTS) -> list[SegmentRefresh]:
    """The latest refreshes, oldest first."""
    return list(reversed(segment.refreshes.all()[:limit]))


def recent_member_counts(segment_ids: list[int], limit: int = SPARKLINE_POINTS) -> dict:
    """For each segment, the member counts of its latest refreshes, oldest first (one query)."""
    latest = SegmentRefresh.objects.filter(segment_id__in=segment_ids).annotate(
        recency=Window(
            RowNumber(),
            partition_by=[F("segment_id")],
            order_by=[F("refreshed_at").desc(), F("id").desc()],
        )
    )
    counts: dict[int, list[int]] = {}
    for segment_id, count in (
        latest.filter(recency__lte=limit)
        .order_by("segment_id", "refreshed_at", "id")
        .values_list("segment_id", "member_count")
    ):
        counts.setdefault(segment_id, []).append(count)
    return counts


def exports_including(segment: Segment) -> QuerySet:
    """The exports that send this segment (shown on its page), through the reverse relation
    ``Segment.exports``: segments do not import the exports app that is built on them."""
    return segment.exports.select_related("connection").order_by("display_name", "id")


@dataclass(frozen=True)
class ShownField:
    """A field of a profile as its page shows it: name, value and where the value came from."""

    name: str
    label: str
    value: object
    origin: str


def profile_fields_with_origins(profile: Profile) -> list[ShownField]:
    """The profile's e-mail, names and attributes, each with its origin in words ("" when no
    write recorded one, as for profiles written before origins were kept)."""
    labels = origin_labels(profile.field_origins)
    fixed = [
        ("email", _("Email"), profile.email),
        ("first_name", _("First name"), profile.first_name),
        ("last_name", _("Last name"), profile.last_name),
    ]
    shown = [ShownField(name, label, value, labels.get(name, "")) for name, label, value in fixed]
    shown += [
        ShownField(name, name, value, labels.get(name, ""))
        for name, value in sorted((profile.attributes or {}).items())
    ]
    return shown
