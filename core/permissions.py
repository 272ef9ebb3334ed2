"""One action's permission and its refusal, and the page decorator that applies it.

Each app declares its actions once, in its ``permissions.py``; the page decorators, the pages'
own checks and the API's permission classes all use those objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.functional import Promise


@dataclass(frozen=True)
class ActionPermission:
    """What one action asks for: the permission a role's group grants (``"app_label.codename"``)
    and what a user without it is told, on the 403 page and in the API's problem details."""

    name: str
    refusal: str | Promise

    def allows(self, user: Any) -> bool:
        return user.has_perm(self.name)


def permission_required(permission: ActionPermission) -> Callable:
    """Refuse the view with a 403 page that states the permission's refusal unless the user
    holds it.

    Anonymous users never get here: ``LoginRequiredMiddleware`` sends them to the login page.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not permission.allows(request.user):
                raise PermissionDenied(permission.refusal)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
