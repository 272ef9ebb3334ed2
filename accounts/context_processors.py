from __future__ import annotations

from django.http import HttpRequest

from accounts.roles import role_of


def role(request: HttpRequest) -> dict:
    """Expose the user's role to every template, for the navigation and the header."""
    return {"user_role": role_of(request.user)}
