"""Who is acting, and from which address, for the request being handled.

``AuditContextMiddleware`` sets it for each request, so that services record the actor and the
address without taking the request as a parameter. Outside a request (Celery tasks, commands)
it is empty and entries are recorded as done by the system.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class Actor:
    #: The request, not its user: views that authenticate later (API tokens) are seen too.
    request: HttpRequest
    remote_address: str | None


_current: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)


def current_actor() -> Actor | None:
    return _current.get()


class AuditContextMiddleware:
    """Place after AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        address = request.META.get("REMOTE_ADDR") or None
        token = _current.set(Actor(request=request, remote_address=address))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
