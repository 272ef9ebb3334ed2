"""Sorting and searching the lists (Connections, Segments, Exports, Profiles, Users, Audit log).

A list page reads ``?sort=`` and ``?q=`` from the address, so a sorted or searched list can be
bookmarked, shared and paged, and works without JavaScript. Only the sort keys a list names are
accepted (anything else falls back to its default order: nobody orders by an arbitrary column),
and a search is cut to a bounded length and number of words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import F, QuerySet

#: The longest search a list takes, in characters, and the most words it matches on.
MAX_QUERY_LENGTH = 100
MAX_QUERY_WORDS = 8


def search_query(raw: str | None) -> str:
    """What was typed into a list's search box, trimmed and bounded."""
    return " ".join((raw or "").split()[:MAX_QUERY_WORDS])[:MAX_QUERY_LENGTH].strip()


def search_words(query: str) -> list[str]:
    """The words a search matches, each at most once."""
    return list(dict.fromkeys(search_query(query).split()))


@dataclass(frozen=True)
class Sorting:
    """A list's sort order: one of its ``keys`` (a name in the address mapped to the fields to
    order by), ascending or descending. ``default`` is a key, "-" first for descending.

    ``nullable`` names the fields that may be empty: those stay last in descending order too
    (ascending puts them last already). The other fields do not pay for it, so that their
    indexes still serve a descending order.
    """

    keys: Mapping[str, tuple[str, ...]]
    default: str
    nullable: frozenset[str] = frozenset()

    def parse(self, raw: str | None) -> str:
        """The sort asked for in the address if this list offers it, else the default."""
        raw = (raw or "").strip()
        return raw if raw.removeprefix("-") in self.keys else self.default

    def apply(self, queryset: QuerySet, sort: str) -> QuerySet:
        """``queryset`` ordered by ``sort``, empty values last either way, the primary key
        breaking ties so that pages never repeat or skip a row."""
        sort = self.parse(sort)
        descending = sort.startswith("-")
        fields = self.keys[sort.removeprefix("-")]
        ordering = [
            (F(field).desc(nulls_last=field in self.nullable or None) if descending else field)
            for field in fields
        ]
        return queryset.order_by(*ordering, "-pk" if descending else "pk")
