"""Which writer last set each field of a profile: the CSV import, the API, or a source.

Every write of a profile records, in ``Profile.field_origins``, each field it set: ``{"email":
"import", "score": "api", "tier": 12}`` (a number is a source's id). It is set-based and
cheap: one JSON object per write, merged in the same upsert (``segments.staging``), so the last
write that changed a profile names itself for every field it set (a write that changes nothing
is not made: the fields keep their origins).

A source is an app above this one: it registers how its origins are named
(``register_namer``), and ``origin_labels`` asks it, so this module never imports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping

from django.utils.translation import gettext as _

IMPORT = "import"
API = "api"
#: An origin: ``IMPORT``, ``API`` or a source's id.
Origin = str | int

#: Gives the names of the sources with these ids (registered by the sources app).
_source_names: Callable[[set[int]], Mapping[int, str]] | None = None


def register_namer(names: Callable[[set[int]], Mapping[int, str]]) -> None:
    global _source_names
    _source_names = names


def stamp(origin: Origin, fields: Iterable[str]) -> str:
    """The JSON object a write merges into each profile it writes: every field it sets."""
    return json.dumps(dict.fromkeys(fields, origin), ensure_ascii=False)


def origin_labels(origins: Mapping[str, Origin] | None) -> dict[str, str]:
    """Each field's origin in words: "from import", "from the API", "from source X"."""
    origins = origins or {}
    ids = {value for value in origins.values() if isinstance(value, int)}
    names = dict(_source_names(ids)) if ids and _source_names is not None else {}
    labels = {}
    for field_name, origin in origins.items():
        if origin == IMPORT:
            labels[field_name] = _("from import")
        elif origin == API:
            labels[field_name] = _("from the API")
        elif isinstance(origin, int) and origin in names:
            labels[field_name] = _("from source %(name)s") % {"name": names[origin]}
        elif isinstance(origin, int):
            labels[field_name] = _("from a source since removed")
    return labels
