"""Every kind of source: one line each. The model's choices come from here."""

from __future__ import annotations

from django.utils.module_loading import import_string

from sources.kinds.base import SourceKind

#: kind -> dotted path of its ``SourceKind`` subclass.
KINDS: dict[str, str] = {
    "postgresql": "sources.kinds.postgresql.kind.PostgreSQLSource",
    "mysql": "sources.kinds.mysql.kind.MySQLSource",
    "file": "sources.kinds.duckdb.kind.DuckDBFileSource",
}

#: The kinds' names, for the API document's enum of them.
KIND_NAMES = list(KINDS)


def kind_class(kind: str) -> type[SourceKind]:
    return import_string(KINDS[kind])


def label(kind: str) -> str:
    return str(kind_class(kind).label)


def choices() -> list[tuple[str, str]]:
    return [(kind, str(kind_class(kind).label)) for kind in KINDS]


def settings_form_class(kind: str):
    return import_string(kind_class(kind).settings_form)
