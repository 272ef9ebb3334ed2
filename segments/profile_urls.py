from __future__ import annotations

from django.urls import path

from segments import profile_views

app_name = "profiles"

urlpatterns = [
    path("", profile_views.profile_list, name="list"),
    path("<int:profile_id>/", profile_views.profile_detail, name="detail"),
    path("import/", profile_views.profile_import, name="import"),
    path("import/<int:import_id>/", profile_views.profile_import_detail, name="import_detail"),
    path(
        "import/<int:import_id>/problem-rows.csv",
        profile_views.profile_import_problems_csv,
        name="import_problems_csv",
    ),
]
