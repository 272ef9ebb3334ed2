"""The request type of the pages that answer htmx with a partial (``request.htmx``, set by
django-htmx's middleware), for type checkers."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
