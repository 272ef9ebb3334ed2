from __future__ import annotations

from django.urls import path

from accounts import oidc

app_name = "sso"

urlpatterns = [
    path("start/", oidc.sso_start, name="start"),
    path("callback/", oidc.sso_callback, name="callback"),
]
