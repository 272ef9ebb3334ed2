from __future__ import annotations

from django.urls import path

from connections import views

app_name = "connections"

urlpatterns = [
    path("", views.connection_list, name="list"),
    path("add/", views.connection_choose_type, name="choose_type"),
    path("add/<slug:kind>/", views.connection_setup, name="setup"),
    path("add/pending/<str:pending_id>/", views.connection_setup_finish, name="setup_finish"),
    path("oauth/authorize/", views.connection_authorize, name="authorize"),
    path("oauth/callback/", views.connection_oauth_callback, name="oauth_callback"),
    path("<int:connection_id>/edit/", views.connection_edit, name="edit"),
    path("<int:connection_id>/test/", views.connection_test, name="test"),
    path("<int:connection_id>/consent-read/", views.connection_consent_read, name="consent_read"),
    path("<int:connection_id>/remove/", views.connection_delete, name="delete"),
]
