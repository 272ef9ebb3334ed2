"""Every API error as RFC 9457 problem details (``application/problem+json``), in the caller's
language (``Accept-Language``, through LocaleMiddleware).

    {"type": "urn:audience-relay:problem:validation-error", "title": "...", "status": 400,
     "detail": "...", "instance": "/api/v1/segments/", "errors": [{"field": "name",
     "message": "..."}]}

``errors`` is there for validation errors only; ``field`` is a dotted path into the request
body (``records.3.email``), or null for a problem with the request as a whole.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:audience-relay:problem:"


def _titles() -> dict[int, tuple[str, str]]:
    """status -> (type slug, title); called per error so the titles are in the caller's language."""
    return {
        400: ("validation-error", _("The request is not valid")),
        401: ("not-authenticated", _("Authentication required")),
        403: ("permission-denied", _("Not allowed")),
        404: ("not-found", _("Not found")),
        405: ("method-not-allowed", _("Method not allowed")),
        406: ("not-acceptable", _("Response format not available")),
        409: ("conflict", _("Conflict")),
        413: ("too-large", _("Request too large")),
        415: ("unsupported-media-type", _("Unsupported media type")),
        429: ("rate-limited", _("Too many requests")),
        500: ("server-error", _("Server error")),
        502: ("service-error", _("The service did not answer as expected")),
    }


def field_errors(detail: Any, path: str = "") -> list[dict[str, str | None]]:
    """Flatten DRF's nested error detail into ``[{field, message}]``."""
    if isinstance(detail, dict):
        errors = []
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            errors += field_errors(value, f"{path}.{name}" if path and name else path or name)
        return errors
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [{"field": path or None, "message": str(item)} for item in detail]
        errors = []
        for index, item in enumerate(detail):
            errors += field_errors(item, f"{path}.{index}" if path else str(index))
        return errors
    return [{"field": path or None, "message": str(detail)}]


def problem_body(
    request, status_code: int, detail: str, errors: list | None = None
) -> dict[str, Any]:
    slug, title = _titles().get(status_code, ("error", _("Error")))
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status_code,
        "detail": detail,
        "instance": request.path if request is not None else None,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem(
    request, status_code: int, detail: str, errors: list | None = None, headers=None
) -> Response:
    body = problem_body(request, status_code, detail, errors)
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc: Exception, context: dict) -> Response:
    request = context.get("request")
    if isinstance(exc, RequestDataTooBig):
        return problem(
            request,
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            _("The request body is larger than %(megabytes)d MB. Send fewer records per call.")
            % {"megabytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)},
        )
    response = exception_handler(exc, context)  # sets WWW-Authenticate and Retry-After
    if response is None:
        logger.exception("API error in %s", request.path if request else "?", exc_info=exc)
        return problem(
            request,
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            _(
                "Something went wrong on our side. Try again; if it persists, tell an "
                "administrator."
            ),
        )
    headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() in ("www-authenticate", "retry-after", "allow")
    }
    if isinstance(exc, exceptions.ValidationError):
        return problem(
            request,
            response.status_code,
            _("Some values are not valid: see errors."),
            field_errors(exc.detail),
            headers,
        )
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        detail = _("Too many requests with this token. Try again in %(seconds)d seconds.") % {
            "seconds": max(1, round(exc.wait))
        }
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    return problem(request, response.status_code, str(detail), headers=headers)
