"""What connections announce, so that the apps built on them (exports) can act on it without
connections knowing those apps.

``connection_deleting`` is sent inside the transaction that removes a connection, before the
row goes, with ``connection`` and ``dependants_action``: ``DETACH`` or ``REMOVE``, what the user
chose for what uses the connection. A receiver whose rows use the connection detaches or removes
them as asked. It never refuses: a signal announces. The refusal is ``connection_delete``'s own,
when anything still uses the connection after the announcement (or without a choice).

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
