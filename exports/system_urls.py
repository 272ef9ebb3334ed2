from __future__ import annotations

from django.urls import path

from exports import system_views

app_name = "system"

urlpatterns = [
    path("", system_views.system_status, name="status"),
    path("schedule/", system_views.system_schedule, name="schedule"),
    path("safety/", system_views.system_safety, name="safety"),
    path("status/<str:kind>/<int:pk>/", system_views.status_detail, name="status_detail"),
]
