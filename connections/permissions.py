"""What each connections action asks for, and what a user without it is told: used by the
pages' decorators and the API's permission class alike (``accounts.roles.ActionPermission``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.permissions import ActionPermission

_ADMINISTRATORS_MANAGE = _(
    "Only administrators can see and change connections. Contributors use the connections "
    "shared with them when they set up exports; ask an administrator if you need one."
)

ADD_CONNECTION = ActionPermission("connections.add_connection", _ADMINISTRATORS_MANAGE)
#: Also **Read back now** (consent) on a connection's page and in the API: reading consent back
#: changes what the connection holds.
CHANGE_CONNECTION = ActionPermission("connections.change_connection", _ADMINISTRATORS_MANAGE)
DELETE_CONNECTION = ActionPermission("connections.delete_connection", _ADMINISTRATORS_MANAGE)
#: Choosing a shared connection for an export (and, in the API, reading the ones one may use).
USE_CONNECTION = ActionPermission(
    "connections.use_connection",
    _(
        "Only contributors and administrators can see connections. Ask an administrator for "
        "the contributor role."
    ),
)

#: The refusal when the role allows the action but the connection is not shared with the user.
NOT_USABLE = _("Only administrators may use this connection.")
