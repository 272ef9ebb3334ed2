"""Reads on connections. Nothing here returns secrets."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from connections.models import Connection, ConsentReadBack
from connections.permissions import CHANGE_CONNECTION, USE_CONNECTION
from connections.types import registry
from core.listing import Sorting, search_words

#: What a contributor may know about a connection: its name and type, never its settings.
PUBLIC_FIELDS = ("id", "display_name", "kind")


#: Admin > Connections' columns that sort.
CONNECTION_SORTING = Sorting(
    keys={
        "name": ("display_name",),
        "type": ("kind", "display_name"),
        "who": ("who_can_use", "display_name"),
        "created": ("created_at",),
        "status": ("status", "display_name"),
    },
    default="name",
)


def connection_list() -> QuerySet[Connection]:
    return Connection.objects.defer("encrypted_credentials").order_by("display_name", "id")


def connection_search(*, query: str = "", sort: str = "") -> QuerySet[Connection]:
    """Admin > Connections: those whose name or type contains every word of ``query``."""
    connections = connection_list()
    for word in search_words(query):
        kinds = [kind for kind, label in registry.choices() if word.lower() in str(label).lower()]
        connections = connections.filter(Q(display_name__icontains=word) | Q(kind__in=kinds))
    return CONNECTION_SORTING.apply(connections, sort)


def connections_usable_by(user) -> QuerySet[Connection]:
    """The connections a user may choose for an export: all of them for administrators, those
    shared with contributors for contributors, none for viewers. Only public fields are loaded."""
    connections = Connection.objects.only(*PUBLIC_FIELDS).order_by("kind", "display_name")
    if CHANGE_CONNECTION.allows(user):
        return connections
    if USE_CONNECTION.allows(user):
        return connections.filter(who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS)
    return connections.none()


def connection_users(connection: Connection) -> list:
    """What uses this connection: the exports that point at it (``Export.connection``, whose
    ``related_name`` is "exports"). Removing it asks what happens to them."""
    return list(connection.exports.order_by("display_name", "id"))


def connection_export_users(connection: Connection) -> list[str]:
    return list(connection.export_users.order_by("username").values_list("username", flat=True))


def connection_name_taken(*, kind: str, name: str, other_than: int | None = None) -> bool:
    """Whether another connection of this type has this display name (in any letter case):
    the export form and the pages tell connections apart by name and type."""
    same = Connection.objects.filter(kind=kind, display_name__iexact=name.strip())
    return same.exclude(pk=other_than).exists() if other_than else same.exists()


def consent_read_back(connection: Connection) -> ConsentReadBack | None:
    """The connection's consent read-back, or None when it was never read back."""
    return ConsentReadBack.objects.filter(connection=connection).first()
