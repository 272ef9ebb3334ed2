from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import set_language

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="segments:list"), name="home"),
    path("accounts/", include("accounts.urls")),
    path("users/", include("accounts.user_urls")),
    path("sso/", include("accounts.oidc_urls")),
    path("audit/", include("audit.urls")),
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("segments/", include("segments.urls")),
    path("profiles/", include("segments.profile_urls")),
    path("connections/", include("connections.urls")),
    path("exports/", include("exports.urls")),
    path("sources/", include("sources.urls")),
    path("system/", include("exports.system_urls")),
    path("exclusions/", include("exports.exclusion_urls")),
    path("webhooks/", include("webhooks.urls")),
    path("api/v1/", include("config.api_urls")),
    path("", include("ops.urls")),
]
