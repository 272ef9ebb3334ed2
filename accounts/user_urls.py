from __future__ import annotations

from django.urls import path

from accounts import user_views as views

app_name = "users"

urlpatterns = [
    path("", views.user_list, name="list"),
    path("add/", views.user_add, name="add"),
    path("<int:user_id>/", views.user_edit, name="edit"),
    path("<int:user_id>/deactivate/", views.user_deactivate, name="deactivate"),
    path("<int:user_id>/reactivate/", views.user_reactivate, name="reactivate"),
    path("<int:user_id>/reset-password/", views.user_reset_password, name="reset_password"),
    path("set-password/<uidb64>/<token>/", views.SetPasswordView.as_view(), name="set_password"),
]
