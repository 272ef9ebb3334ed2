"""Connections: list and retrieve (never a secret), and **Test connection**. Creating one stays
in the browser: OAuth needs a person."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.filtering import FilterSet
from config.translation import shown
from connections import services
from connections.models import Connection
from connections.permissions import CHANGE_CONNECTION, NOT_USABLE, USE_CONNECTION
from connections.selectors import connections_usable_by
from connections.types.base import StepStatus


class ConnectionSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(read_only=True)
    last_error = serializers.SerializerMethodField()

    class Meta:
        model = Connection
        # Never encrypted_credentials: the API does not know the secrets exist.
        fields = [
            "id",
            "display_name",
            "kind",
            "kind_label",
            "status",
            "who_can_use",
            "last_error",
            "last_checked_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_last_error(self, connection: Connection) -> str:
        return shown(connection.last_error)


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=[status.value for status in StepStatus])
    message = serializers.CharField()


class ConnectionTestSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    steps = StepSerializer(many=True)
    connection = ConnectionSerializer()


class ConnectionFilter(FilterSet):
    class Meta:
        model = Connection
        fields = ["kind", "status", "who_can_use"]


class ConnectionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ConnectionSerializer
    filterset_class = ConnectionFilter
    required_permissions = {
        "list": USE_CONNECTION,
        "retrieve": USE_CONNECTION,
        "test": CHANGE_CONNECTION,
    }

    def get_queryset(self):
        """The connections the caller may use for an export: all of them for administrators."""
        return (
            Connection.objects.filter(pk__in=connections_usable_by(self.request.user).values("pk"))
            .defer("encrypted_credentials")
            .order_by("id")
        )

    def object_refusal(self, user, connection: Connection) -> str | None:
        if connections_usable_by(user).filter(pk=connection.pk).exists():
            return None
        return str(NOT_USABLE)

    @extend_schema(request=None, responses=ConnectionTestSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Run the type's named test steps against the service, as **Test connection** does."""
        connection = self.get_object()
        steps = services.connection_test(connection_id=connection.pk)
        connection.refresh_from_db()
        return Response(
            {
                "passed": all(step.status != StepStatus.FAILED for step in steps),
                "steps": [
                    {
                        "name": str(step.name),
                        "status": str(step.status),
                        "message": str(step.message),
                    }
                    for step in steps
                ],
                "connection": ConnectionSerializer(connection).data,
            }
        )
