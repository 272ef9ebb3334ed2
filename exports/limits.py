"""How many profiles each destination type takes in one export (product.md E5).

Each backend class declares its ``max_profiles``; the engine refuses a run over it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from connections.types import registry
from segments.models import Segment


def max_profiles(kind: str) -> int | None:
    """The most profiles one export of this connection type may send, or None for no limit."""
    try:
        backend_class = registry.backend_class(kind)
    except KeyError:
        return None
    return backend_class.max_profiles


def limits_by_kind() -> dict[str, int | None]:
    return {kind: max_profiles(kind) for kind in registry.TYPES}


def limit_warning(kind: str, segments: Iterable[Segment]) -> str | None:
    """A warning when the segments together hold more members than the type takes.

    The sum counts a profile that is in two segments twice, so it can overstate the real
    number: it is a warning, not a refusal.
    """
    limit = max_profiles(kind)
    total = sum(segment.member_count for segment in segments)
    if limit is None or total <= limit:
        return None
    return _(
        "The chosen segments hold %(count)s profiles; %(service)s takes at most %(limit)s in one "
        "export. The run is refused if more than that remain once duplicates and profiles "
        "without an email are left out: choose smaller segments, or split them over several "
        "exports."
    ) % {"count": f"{total:,}", "limit": f"{limit:,}", "service": registry.label(kind)}
