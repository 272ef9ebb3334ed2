"""Who is calling: a personal API token (``Authorization: Bearer ar_...``) or, for the
interactive docs, the browser's session (with CSRF, as every page).

Tokens are checked by ``accounts.tokens.token_authenticate`` and nowhere else: it refuses
revoked tokens and tokens of deactivated users.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed

from accounts.tokens import token_authenticate

BAD_TOKEN = _(
    "This API token is not valid: it is unknown, was revoked, or its user was deactivated. "
    "Create a new one on the API tokens page."
)


class BearerTokenAuthentication(BaseAuthentication):
    """``request.user`` is the token's user and ``request.auth`` the ``ApiToken``."""

    keyword = "bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).decode("latin-1")
        scheme, _space, raw_token = header.partition(" ")
        if scheme.lower() != self.keyword:
            return None
        token = token_authenticate(raw_token.strip())
        if token is None:
            raise AuthenticationFailed(BAD_TOKEN)
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to a caller who did not authenticate.
        return 'Bearer realm="api"'


class CsrfSessionAuthentication(SessionAuthentication):
    """The logged-in browser session; unsafe methods need the CSRF token, as on the pages."""
