"""Requests refused before any view: the API over plain HTTP, and a NUL in an address.

Over plain HTTP, where the site redirects to HTTPS (``SECURE_SSL_REDIRECT``),
SecurityMiddleware would answer with a redirect, which clients follow, sending the token and
the body again; and it would hide the mistake that sent them in the clear. The API answers 403
problem details instead, saying to call the HTTPS address. Place before SecurityMiddleware.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _

from api.problems import PROBLEM_CONTENT_TYPE, problem_body

API_PREFIX = "/api/"


class PlainHttpRefusedMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.SECURE_SSL_REDIRECT
            and request.path.startswith(API_PREFIX)
            and not request.is_secure()
        ):
            return self.refusal(request)
        return self.get_response(request)

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse:
        secure_url = f"https://{request.get_host()}{request.get_full_path()}"
        # LocaleMiddleware comes later: answer in the caller's language here.
        with translation.override(translation.get_language_from_request(request)):
            body = problem_body(
                request,
                403,
                _(
                    "The API answers over HTTPS only: call %(url)s. Nothing was done. If this "
                    "request carried a token, it crossed the network unencrypted: revoke it on "
                    "the API tokens page and make a new one."
                )
                % {"url": secure_url},
            )
        return JsonResponse(body, status=403, content_type=PROBLEM_CONTENT_TYPE)


class NulInAddressRefusedMiddleware:
    """A NUL character in a request's path or query (``%00``) answers 400 saying so.

    Nothing that names a profile, a field or a search term can hold one (PostgreSQL cannot store
    it), so no view needs to handle it: a look-up or a search would fail as a server error. The
    API answers with problem details, the pages with the error page. Place after LocaleMiddleware
    and AuthenticationMiddleware (the error page shows who is logged in).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        in_query = any("\x00" in key + value for key, value in request.GET.items())
        if "\x00" not in request.path and not in_query:
            return self.get_response(request)
        detail = _(
            "The address holds a NUL character (%%00) in its %(part)s. Nothing can be named or "
            "searched with one: remove it."
        ) % {"part": _("query") if in_query else _("path")}
        if request.path.startswith(API_PREFIX):
            body = problem_body(request, 400, detail)
            return JsonResponse(body, status=400, content_type=PROBLEM_CONTENT_TYPE)
        return render(request, "400.html", {"detail": detail}, status=400)
