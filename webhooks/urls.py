from __future__ import annotations

from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("add/", views.endpoint_create, name="create"),
    path("<int:endpoint_id>/", views.endpoint_detail, name="detail"),
    path("<int:endpoint_id>/edit/", views.endpoint_edit, name="edit"),
    path("<int:endpoint_id>/enable/", views.endpoint_enable, name="enable"),
    path("<int:endpoint_id>/disable/", views.endpoint_disable, name="disable"),
    path("<int:endpoint_id>/rotate-secret/", views.endpoint_rotate_secret, name="rotate_secret"),
    path("<int:endpoint_id>/test/", views.endpoint_send_test, name="test"),
    path("<int:endpoint_id>/remove/", views.endpoint_delete, name="delete"),
]
