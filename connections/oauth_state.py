"""The OAuth ``state`` parameter: signed, bound to the session and its target, single-use and
short-lived.

The state names a random nonce and the target (a pending setup or an existing connection), signed
with the SECRET_KEY and a timestamp. The nonce is also kept in the session: the callback accepts a
state only if its signature holds, it is younger than ``MAX_AGE_SECONDS``, and its nonce is in
*this* session for *this* target. The nonce is removed on first use, so a state works once.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from django.core import signing
from django.utils.translation import gettext as _

SALT = "connections.oauth-state"
SESSION_KEY = "connections_oauth_states"
MAX_AGE_SECONDS = 10 * 60
MAX_OUTSTANDING = 5


class StateError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class StateTarget:
    target: str
    redirect_uri: str


def state_issue(session, *, target: str, redirect_uri: str) -> str:
    nonce = secrets.token_urlsafe(24)
    states = dict(session.get(SESSION_KEY, {}))
    states[nonce] = {"target": target, "redirect_uri": redirect_uri, "issued": time.time()}
    for old in sorted(states, key=lambda key: states[key]["issued"])[:-MAX_OUTSTANDING]:
        del states[old]
    session[SESSION_KEY] = states
    return signing.dumps({"n": nonce, "t": target}, salt=SALT)


def state_consume(session, state: str) -> StateTarget:
    """The target of a valid state, which can't be used again; ``StateError`` otherwise."""
    try:
        payload = signing.loads(state or "", salt=SALT)
    except signing.BadSignature:
        raise StateError(
            _(
                "The reply from the service could not be verified (its state is not one we "
                "issued). Nothing was saved. Start the authentication again."
            )
        ) from None
    states = dict(session.get(SESSION_KEY, {}))
    entry = states.pop(str(payload.get("n")), None)
    session[SESSION_KEY] = states
    if entry is None or entry.get("target") != payload.get("t"):
        raise StateError(
            _(
                "This authentication reply was already used or belongs to another session. "
                "Nothing was saved. Start the authentication again."
            )
        )
    try:
        signing.loads(state, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise StateError(
            _(
                "The authentication took longer than %(minutes)d minutes and expired. Nothing "
                "was saved. Start the authentication again."
            )
            % {"minutes": MAX_AGE_SECONDS // 60}
        ) from None
    return StateTarget(target=entry["target"], redirect_uri=entry["redirect_uri"])
