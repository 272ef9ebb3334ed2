"""Connections: list and retrieve (never a secret), and **Test connection**. Creating one stays
in the browser: OAuth needs a person."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from api.filtering import FilterSet
from config.translation import shown
from connections import consent, selectors, services
from connections.models import Connection, ConsentReadBack
from connections.permissions import CHANGE_CONNECTION, NOT_USABLE, USE_CONNECTION
from connections.types.base import StepStatus


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("Consent is being read back from this connection already.")


#: What the roles table shows administrators only: a contributor sees a connection's name and
#: type, never its settings or its state (as on the pages).
ADMINISTRATORS_ONLY = ("status", "who_can_use", "last_error", "last_checked_at", "created_at")


class ConnectionSerializer(serializers.ModelSerializer):
    # Its name and type for everyone who may use it; the rest (ADMINISTRATORS_ONLY) for those
    # who may change it. (No docstring: it would be the schema's description.)

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

    def to_representation(self, connection: Connection) -> dict:
        data = super().to_representation(connection)
        request = self.context.get("request")
        if request is None or not CHANGE_CONNECTION.allows(request.user):
            for name in ADMINISTRATORS_ONLY:
                del data[name]
        return data


class ConnectionSchema(OpenApiSerializerExtension):
    """The document says which fields only administrators get (and so that the others may be
    missing)."""

    target_class = ConnectionSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["required"] = [
            name for name in schema["required"] if name not in ADMINISTRATORS_ONLY
        ]
        for name in ADMINISTRATORS_ONLY:
            field = schema["properties"][name]
            said = [_("Administrators only."), field.get("description", "")]
            field["description"] = "\n\n".join(part for part in said if part)
        return schema


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=[status.value for status in StepStatus])
    message = serializers.CharField()


class ConnectionTestSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    steps = StepSerializer(many=True)
    connection = ConnectionSerializer()


class ConsentReadBackSerializer(serializers.ModelSerializer):
    last_error = serializers.SerializerMethodField()

    class Meta:
        model = ConsentReadBack
        fields = [
            "status",
            "since",
            "pages_read",
            "read_count",
            "new_count",
            "invalid_count",
            "last_error",
            "started_at",
            "finished_at",
            "last_read_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "since": {
                "help_text": gettext_lazy(
                    "The start of the last complete read: the next read asks for what changed "
                    "since then."
                )
            },
            "read_count": {"help_text": gettext_lazy("Records the current or last read found.")},
            "new_count": {"help_text": gettext_lazy("Of those, the ones we did not hold yet.")},
            "invalid_count": {
                "help_text": gettext_lazy("Events left out for an empty or malformed address.")
            },
        }

    def get_last_error(self, state: ConsentReadBack) -> str:
        return shown(state.last_error)


class ConnectionFilter(FilterSet):
    """A contributor may filter by type only: the other filters would tell them the state and
    the sharing that the roles table shows administrators only."""

    status = filters.ChoiceFilter(
        choices=Connection.Status.choices, help_text=gettext_lazy("Administrators only.")
    )
    who_can_use = filters.ChoiceFilter(
        choices=Connection.Audience.choices, help_text=gettext_lazy("Administrators only.")
    )

    class Meta:
        model = Connection
        fields = ["kind", "status", "who_can_use"]

    @property
    def form(self):
        form = super().form
        if not CHANGE_CONNECTION.allows(self.request.user) and not hasattr(self, "_refused"):
            self._refused = [name for name in ADMINISTRATORS_ONLY if name in form.data]
            for name in self._refused:
                form.add_error(name, _("Only administrators can filter connections by this."))
        return form


class ConnectionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ConnectionSerializer
    filterset_class = ConnectionFilter
    required_permissions = {
        "list": USE_CONNECTION,
        "retrieve": USE_CONNECTION,
        "test": CHANGE_CONNECTION,
        "consent_read": CHANGE_CONNECTION,
    }

    def get_queryset(self):
        """The connections the caller may use for an export: all of them for administrators."""
        return (
            Connection.objects.filter(
                pk__in=selectors.connections_usable_by(self.request.user).values("pk")
            )
            .defer("encrypted_credentials")
            .order_by("id")
        )

    def object_refusal(self, user, connection: Connection) -> str | None:
        if selectors.connections_usable_by(user).filter(pk=connection.pk).exists():
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
                "connection": ConnectionSerializer(connection, context={"request": request}).data,
            }
        )

    @extend_schema(
        methods=["GET"],
        request=None,
        responses=ConsentReadBackSerializer,
        description=gettext_lazy(
            "Where the connection's consent read-back stands: its status, what the current or "
            "last read found, and its error."
        ),
    )
    @extend_schema(
        methods=["POST"],
        request=None,
        responses={202: ConsentReadBackSerializer},
        description=gettext_lazy(
            "Start reading consent back from the connection now, as **Read back now** does; "
            "it goes on from where an unfinished read stopped. 400 when the connection's type "
            "does not read consent or it must be authenticated again; 409 when a read runs."
        ),
    )
    @action(detail=True, methods=["get", "post"], url_path="consent-read")
    def consent_read(self, request, pk=None):
        connection = self.get_object()
        if request.method == "POST":
            try:
                state = consent.read_back_request(connection=connection, user=request.user)
            except consent.ReadBackNotPossible as refused:
                raise ValidationError({"connection": [str(refused.message)]}) from refused
            except consent.ReadBackAlreadyRunning as running:
                raise Conflict() from running
            state.refresh_from_db()
            return Response(ConsentReadBackSerializer(state).data, status=status.HTTP_202_ACCEPTED)
        state = selectors.consent_read_back(connection) or ConsentReadBack(connection=connection)
        return Response(ConsentReadBackSerializer(state).data)
