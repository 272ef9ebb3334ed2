from __future__ import annotations

from django.urls import path

from segments import views

app_name = "segments"

urlpatterns = [
    path("", views.segment_list, name="list"),
    path("new/", views.segment_edit, name="create"),
    path("estimate/", views.segment_estimate, name="estimate"),
    path("refresh-all/", views.segment_refresh_all, name="refresh_all"),
    path("<int:segment_id>/", views.segment_detail, name="detail"),
    path("<int:segment_id>/edit/", views.segment_edit, name="edit"),
    path("<int:segment_id>/refresh/", views.segment_refresh, name="refresh"),
    path("<int:segment_id>/delete/", views.segment_delete, name="delete"),
    path("<int:segment_id>/active/", views.segment_set_active, name="set_active"),
    path("<int:segment_id>/static/", views.segment_set_static, name="set_static"),
    path("<int:segment_id>/members/", views.segment_members, name="members"),
    path("<int:segment_id>/members.csv", views.segment_members_csv, name="members_csv"),
]
