"""API v1: ``/api/v1/``. The OpenAPI document is at ``openapi.json``, the docs at ``docs``.

Each app serves its own resources from its ``apis.py`` (HackSoft's layout) on the plumbing in
``api/``; this module, at the top with the site's URLs, only routes to them.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework.routers import SimpleRouter

from api import docs, errors
from connections import apis as connection_apis
from exports import apis as export_apis
from exports import erasure_apis, exclusion_apis
from segments import apis as segment_apis
from segments import consent_apis, profile_apis
from sources import apis as source_apis
from webhooks import apis as webhook_apis

app_name = "api"


class Router(SimpleRouter):
    """Routes with or without the trailing slash (``members.csv`` reads better without)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = Router()
router.register("segments", segment_apis.SegmentViewSet, basename="segment")
router.register("fields", segment_apis.ProfileFieldViewSet, basename="field")
router.register("connections", connection_apis.ConnectionViewSet, basename="connection")
router.register("exports", export_apis.ExportViewSet, basename="export")
router.register("runs", export_apis.RunViewSet, basename="run")
router.register("profiles", profile_apis.ProfileViewSet, basename="profile")
router.register("webhooks", webhook_apis.EndpointViewSet, basename="webhook")
router.register("exclusions", exclusion_apis.ExclusionViewSet, basename="exclusion")
router.register("sources", source_apis.SourceViewSet, basename="source")
router.register("consent-records", consent_apis.ConsentRecordViewSet, basename="consent-record")

#: Before the profiles' routes, whose customer ids could otherwise read "erase".
erasure_routes = [
    re_path(
        r"^profiles/erase/?$",
        erasure_apis.ErasureViewSet.as_view({"post": "erase"}),
        name="profile-erase",
    ),
    re_path(
        r"^profiles/erasures/(?P<erasure_id>[0-9]+)/?$",
        erasure_apis.ErasureViewSet.as_view({"get": "erasure"}),
        name="profile-erasure",
    ),
]


def _public(patterns: list) -> list:
    """The API answers for itself (401 problem details), so the pages' login redirect is off."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _public(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            login_not_required(pattern.callback)
    return patterns


urlpatterns = _public(
    [
        path("openapi.json", SpectacularJSONAPIView.as_view(), name="schema"),
        path("docs", docs.swagger_ui, name="docs"),
        path("redoc", docs.redoc, name="redoc"),
        *erasure_routes,
        *router.urls,
        # Anything else under /api/v1/ is a 404 in problem details, not the HTML page.
        re_path(r"^.*$", errors.not_found),
    ]
)
