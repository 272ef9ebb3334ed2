"""What the account behind a connection says about an export's list: the checks of
**Add export** / **Edit**, asked of the service. The form turns the answers into its messages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from connections import services as connection_services
from connections.models import Connection
from connections.types.base import BackendError, DestinationField
from connections.types.registry import backend_class
from exports.models import Export

if TYPE_CHECKING:
    from config.translation import LaterText

logger = logging.getLogger(__name__)

FOUND = "found"
NOT_FOUND = "not_found"
UNCHECKED = "unchecked"

#: Why no new list can be named: a List ID is given too, or the type does not create lists.
BOTH_GIVEN = "both_given"
NOT_CREATABLE = "not_creatable"


@dataclass(frozen=True)
class ListCheck:
    """The answer about one list id. ``outcome`` is FOUND, NOT_FOUND or UNCHECKED; ``name`` is
    the list's name (as the service has it when found; as saved when it could not be checked
    and the export already sends there); ``reason`` says why it could not be checked."""

    outcome: str
    name: str = ""
    reason: LaterText | str = ""


def destination_list_check(
    connection: Connection, list_id: str, *, saved: Export | None = None
) -> ListCheck:
    """Look ``list_id`` up among the lists of the account behind ``connection``. ``saved`` is
    the export being edited, whose list name is kept when the service cannot be asked."""
    try:
        found = connection_services.destination_find(connection, list_id)
    except BackendError as error:
        reason = error.message
    except Exception:  # a fault of ours or the service's: never shown as a stack trace
        logger.exception("Listing the lists of connection %s failed", connection.pk)
        reason = _("The service did not answer as expected.")
    else:
        if found is None:
            return ListCheck(NOT_FOUND)
        return ListCheck(FOUND, name=found.name)
    name = saved.list_name if saved is not None and saved.list_id == list_id else ""
    return ListCheck(UNCHECKED, name=name, reason=reason)


def new_list_check(connection: Connection | None, list_id: str | None) -> str:
    """Why a list cannot be named to be created on save (BOTH_GIVEN, NOT_CREATABLE), or ""."""
    if list_id:
        return BOTH_GIVEN
    if connection is not None and not backend_class(connection.kind).creates_lists:
        return NOT_CREATABLE
    return ""


class FieldsUnavailable(Exception):
    """The list's fields could not be had from the service; ``reason`` says why."""

    def __init__(self, reason: LaterText | str):
        super().__init__(str(reason))
        self.reason = reason


def destination_fields(connection: Connection, list_id: str) -> list[DestinationField]:
    """The fields of the list ``list_id`` (built-in ones first) with their types, for
    **Load fields** and the form's checks; raises ``FieldsUnavailable`` with the reason."""
    try:
        return connection_services.backend_for(connection).list_fields(list_id)
    except BackendError as error:
        raise FieldsUnavailable(error.message) from None
    except NotImplementedError:
        raise FieldsUnavailable(
            _("%(service)s cannot list its fields yet.") % {"service": connection.kind_label}
        ) from None
    except Exception:  # a fault of ours or the service's: never shown as a stack trace
        logger.exception("Listing the fields of connection %s failed", connection.pk)
        raise FieldsUnavailable(_("The service did not answer as expected.")) from None
