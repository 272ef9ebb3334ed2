"""What a locked-out login sees: the login page with a message, and a line in the log.

django-axes counts failed logins per username and per address (settings: AXES_*); once either
reaches ``AXES_FAILURE_LIMIT`` it calls ``lockout_response`` instead of trying the password.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The login page, status 429, saying that logging in is paused and for how long."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    logger.warning(
        "Login locked out after %d failures: username=%r address=%s",
        settings.AXES_FAILURE_LIMIT,
        username,
        getattr(request, "axes_ip_address", request.META.get("REMOTE_ADDR")),
    )
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "locked_out_minutes": minutes, "next": request.POST.get("next", "")}
    return render(request, "accounts/login.html", context, status=429)
