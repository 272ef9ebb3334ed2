from __future__ import annotations

from django.urls import path

from exports import exclusion_views

app_name = "exclusions"

urlpatterns = [
    path("", exclusion_views.exclusion_list, name="list"),
    path("consent-rule/", exclusion_views.consent_rule_save, name="consent_rule"),
    path("add/<str:kind>/", exclusion_views.exclusion_add, name="add"),
    path("<int:exclusion_id>/edit/", exclusion_views.exclusion_edit, name="edit"),
    path("<int:exclusion_id>/remove/", exclusion_views.exclusion_delete, name="delete"),
]
