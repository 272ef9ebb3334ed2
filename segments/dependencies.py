"""Segments built from segments: who uses whom, cycles, and the order to refresh them in."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from segments.models import Segment
from segments.rules import RuleError


def _uses_graph() -> dict[int, set[int]]:
    graph: dict[int, set[int]] = {}
    for user_id, used_id in Segment.uses.through.objects.values_list(
        "from_segment_id", "to_segment_id"
    ):
        graph.setdefault(user_id, set()).add(used_id)
    return graph


def refuse_cycle(segment_id: int, uses: Iterable[int]) -> None:
    """Raise RuleError naming the loop if ``segment_id`` using ``uses`` would use itself."""
    graph = _uses_graph()
    graph[segment_id] = set(uses)
    path = _path_back(graph, segment_id)
    if path:
        names = dict(Segment.objects.filter(pk__in=path).values_list("pk", "name"))
        shown = " → ".join(f"“{names.get(pk, _('this segment'))}”" for pk in path)
        raise RuleError(
            _("A segment cannot use itself, even through other segments: %(path)s.")
            % {"path": shown}
        )


def _path_back(graph: dict[int, set[int]], start: int) -> list[int]:
    """A path start → … → start through ``graph``, or [] when there is none."""
    stack: list[tuple[int, list[int]]] = [(start, [start])]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        for used in sorted(graph.get(node, ())):
            if used == start:
                return [*path, start]
            if used not in seen:
                seen.add(used)
                stack.append((used, [*path, used]))
    return []


def refresh_order(segment_ids: Iterable[int]) -> list[int]:
    """The ids with every segment after the segments it uses (ties by id)."""
    wanted = set(segment_ids)
    graph = _uses_graph()
    ordered: list[int] = []
    placed: set[int] = set()

    def place(pk: int, visiting: frozenset[int]) -> None:
        if pk in placed or pk in visiting:
            return  # a cycle cannot be saved; an old one is broken here rather than looping
        for used in sorted(graph.get(pk, ())):
            place(used, visiting | {pk})
        placed.add(pk)
        if pk in wanted:
            ordered.append(pk)

    for pk in sorted(wanted):
        place(pk, frozenset())
    return ordered


def segments_using(segment: Segment) -> list[Segment]:
    return list(segment.used_by.order_by("name"))
