from __future__ import annotations

from django.urls import path

from sources import views

app_name = "sources"

urlpatterns = [
    path("", views.source_list, name="list"),
    path("add/<slug:kind>/", views.source_edit, name="add"),
    path("<int:source_id>/", views.source_detail, name="detail"),
    path("<int:source_id>/edit/", views.source_edit, name="edit"),
    path("<int:source_id>/test/", views.source_test, name="test"),
    path("<int:source_id>/run/", views.source_run, name="run_now"),
    path("<int:source_id>/remove/", views.source_delete, name="delete"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/approve/", views.run_approve, name="approve"),
]
