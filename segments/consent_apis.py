"""Consent records: who opted out or bounced at a connection, read back from its service.
Read only: records come from the read-back, and nothing lifts one."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from rest_framework import serializers, viewsets

from api.filtering import FilterSet, IdFilter, TextFilter
from core.consent import ConsentState
from segments.consent import normalise_email
from segments.models import ConsentRecord
from segments.permissions import VIEW_PROFILE


class ConsentRecordSerializer(serializers.ModelSerializer):
    state_label = serializers.CharField(source="get_state_display", read_only=True)

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "email",
            "channel",
            "state",
            "state_label",
            "connection",
            "connection_name",
            "list_id",
            "occurred_at",
            "reason",
            "recorded_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "connection": {
                "help_text": gettext_lazy(
                    "The connection it was read back from; null once the connection is removed "
                    "(its name is kept)."
                )
            },
            "list_id": {
                "help_text": gettext_lazy(
                    "The service's list it happened in; empty when it holds for the whole account."
                )
            },
            "occurred_at": {
                "help_text": gettext_lazy("When it happened by the service's clock, if it said.")
            },
        }


class ConsentRecordFilter(FilterSet):
    email = TextFilter(
        method="filter_email",
        help_text=gettext_lazy("An address, in any case; spaces around it are ignored."),
    )
    state = filters.ChoiceFilter(choices=ConsentState.choices)
    connection = IdFilter(field_name="connection_id")

    class Meta:
        model = ConsentRecord
        fields = ["email", "state", "connection"]

    def filter_email(self, queryset, name, value):
        return queryset.filter(email=normalise_email(value) or value.strip().lower())


class ConsentRecordViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ConsentRecordSerializer
    filterset_class = ConsentRecordFilter
    required_permissions = {"list": VIEW_PROFILE, "retrieve": VIEW_PROFILE}

    def get_queryset(self):
        return ConsentRecord.objects.order_by("id")
