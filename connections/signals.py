"""What connections announce, so that the apps built on them (exports) can act on it without
connections knowing those apps.

``connection_deleting`` is sent inside the transaction that removes a connection, before the
row goes, with ``connection`` and ``dependants_action``: ``DETACH``, ``REMOVE`` or "" (no choice
made). A receiver whose rows use the connection detaches or removes them as asked; when no
choice was made it raises ``connections.services.ConnectionInUse`` naming them, and the
connection stays.

``connection_needs_reauthentication`` is sent with ``connection_id`` once, when a connection has
just moved to "needs re-authentication". A receiver that fails is logged and never hides the
authentication error from whoever met it.
"""

from __future__ import annotations

from django.dispatch import Signal

DETACH = "detach"
REMOVE = "remove"

connection_deleting = Signal()
connection_needs_reauthentication = Signal()
