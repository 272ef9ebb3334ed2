"""Who is acting, and from which address, for the request being handled.

``AuditContextMiddleware`` sets it for each request, so that services record the actor and the
address without taking the request as a parameter. Outside a request (Celery tasks, commands)
it is empty and entries are recorded as done by the system.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class Actor:
    #: The request, not its user: views that authenticate later (API tokens) are seen too.
    request: HttpRequest
    remote_address: str | None


_current: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)


def current_actor() -> Actor | None:
    return _current.get()


def client_address(request: HttpRequest) -> str | None:
    """The address the request came from, also for login throttling (``AXES_CLIENT_IP_CALLABLE``).

    Behind ``TRUSTED_PROXY_COUNT`` reverse proxies, each of which appends the address it saw to
    X-Forwarded-For, the client is the entry that many places from the end; what comes before
    it was written by the client and is not trusted.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware:
    """Place after AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(Actor(request=request, remote_address=client_address(request)))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
