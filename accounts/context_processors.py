from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from accounts.roles import role_of


def role(request: HttpRequest) -> dict:
    """Expose the user's role to every template, for the navigation and the header, and
    whether single sign-on is set up, for the login page."""
    return {"user_role": role_of(request.user), "sso_enabled": settings.OIDC_ENABLED}
