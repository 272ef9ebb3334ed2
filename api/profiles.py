"""Profiles: list, get by customer id."""

from __future__ import annotations

from django_filters import rest_framework as filters
from rest_framework import serializers, viewsets

from segments import profile_views
from segments.models import Profile


class ProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = Profile
        fields = [
            "id",
            "customer_id",
            "email",
            "first_name",
            "last_name",
            "attributes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ProfileFilter(filters.FilterSet):
    email = filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Profile
        fields = ["email"]


class ProfileViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProfileSerializer
    filterset_class = ProfileFilter
    lookup_field = "customer_id"
    lookup_value_regex = "[^/]+"
    required_permissions = {
        "list": ("segments.view_profile", profile_views.CAN_VIEW),
        "retrieve": ("segments.view_profile", profile_views.CAN_VIEW),
    }

    def get_queryset(self):
        return Profile.objects.order_by("id")
