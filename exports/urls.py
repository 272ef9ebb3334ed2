from __future__ import annotations

from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    path("", views.export_list, name="list"),
    path("add/", views.export_create, name="create"),
    path("lists/", views.destination_lists, name="destination_lists"),
    path("fields/", views.destination_fields, name="destination_fields"),
    path("run-all/", views.export_run_all, name="run_all"),
    path("<int:export_id>/", views.export_detail, name="detail"),
    path("<int:export_id>/edit/", views.export_edit, name="edit"),
    path("<int:export_id>/run/", views.export_run, name="run"),
    path("<int:export_id>/cancel/", views.export_cancel, name="cancel"),
    path("<int:export_id>/duplicate/", views.export_duplicate, name="duplicate"),
    path("<int:export_id>/schedule/", views.export_schedule, name="schedule"),
    path("<int:export_id>/detach/", views.export_detach, name="detach"),
    path("<int:export_id>/remove/", views.export_delete, name="delete"),
    path("<int:export_id>/preview/", views.export_preview, name="preview"),
    path("<int:export_id>/resend/", views.export_resend, name="resend"),
    path("runs/<int:run_id>/retry/", views.run_retry, name="run_retry"),
    path("runs/<int:run_id>/approve/", views.run_approve, name="run_approve"),
    path("runs/<int:run_id>/discard/", views.run_discard, name="run_discard"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/failures.csv", views.run_failures_csv, name="run_failures_csv"),
]
