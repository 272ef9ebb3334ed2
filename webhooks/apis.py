"""Webhook endpoints (administrators only): add, change, remove, enable, disable, rotate the
secret, send a test event, and read the delivery log.

Validation is the page's ``EndpointForm`` and every write the ``webhooks.services`` function
the page calls. A secret is in exactly one response, the one to the call that made it (adding
the endpoint or rotating its secret), sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.forms import validated
from api.pagination import NewestFirstPagination
from config.translation import shown
from webhooks import selectors, services
from webhooks.events import EVENT_CHOICES
from webhooks.forms import EndpointForm
from webhooks.models import Attempt, Delivery, Endpoint
from webhooks.permissions import MANAGE_WEBHOOK


class EndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES))
    disabled_reason = serializers.SerializerMethodField()

    class Meta:
        model = Endpoint
        # Never encrypted_secret: only the calls that make a secret return it (``secret``).
        fields = [
            "id",
            "url",
            "description",
            "events",
            "is_enabled",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "secret_rotated_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_disabled_reason(self, endpoint: Endpoint) -> str:
        return shown(endpoint.disabled_reason)


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(
        help_text=_(
            "The signing secret, in this response only: store it now. Each delivery is signed "
            "with it (HMAC-SHA256 of the Webhook-Timestamp header, a dot and the body, in the "
            "header Webhook-Signature: v1=<hex>)."
        )
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class EndpointWriteSerializer(serializers.Serializer):
    """Shapes the request for the page's form, which does the checking."""

    url = serializers.CharField(
        max_length=2000, help_text=_("Where each event is POSTed: an https:// address.")
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1
    )

    def form(self, endpoint: Endpoint | None) -> EndpointForm:
        data: dict = {}
        if endpoint is not None:  # PATCH: what is not sent stays as it is
            data = {
                "url": endpoint.url,
                "description": endpoint.description,
                "events": list(endpoint.events),
            }
        data.update(self.validated_data)
        return EndpointForm(data, instance=endpoint)


class AttemptSerializer(serializers.ModelSerializer):
    error = serializers.SerializerMethodField()

    class Meta:
        model = Attempt
        fields = [
            "number",
            "attempted_at",
            "duration_ms",
            "status_code",
            "succeeded",
            "error",
            "response_excerpt",
            "next_retry_at",
        ]
        read_only_fields = fields

    def get_error(self, attempt: Attempt) -> str:
        return shown(attempt.error)


class DeliverySerializer(serializers.ModelSerializer):
    attempts = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "message_id",
            "event_type",
            "is_test",
            "status",
            "attempt_count",
            "next_attempt_at",
            "created_at",
            "finished_at",
            "attempts",
        ]
        read_only_fields = fields


def _with_secret(endpoint: Endpoint, secret: str, status_code: int) -> Response:
    response = Response({**EndpointSerializer(endpoint).data, "secret": secret}, status=status_code)
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store"
    return response


@extend_schema_view(
    create=extend_schema(
        request=EndpointWriteSerializer, responses={201: EndpointWithSecretSerializer}
    ),
    update=extend_schema(request=EndpointWriteSerializer, responses=EndpointSerializer),
    partial_update=extend_schema(request=EndpointWriteSerializer, responses=EndpointSerializer),
)
class EndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Where events are sent. Each delivery is a POST of JSON ``{id, type, created_at, data}``
    with the headers ``Webhook-Id`` (the same on every retry of one event),
    ``Webhook-Timestamp`` (Unix seconds) and ``Webhook-Signature: v1=<hex>``, the HMAC-SHA256
    of the timestamp, a dot and the body, keyed with the endpoint's secret. Answer with a 2xx
    status; anything else is retried with backoff, and an endpoint failing for a day is
    disabled."""

    serializer_class = EndpointSerializer
    required_permissions = dict.fromkeys(
        (
            "list",
            "retrieve",
            "create",
            "update",
            "partial_update",
            "destroy",
            "enable",
            "disable",
            "rotate_secret",
            "test",
            "deliveries",
        ),
        MANAGE_WEBHOOK,
    )

    def get_queryset(self):
        return Endpoint.objects.defer("encrypted_secret").order_by("id")

    def create(self, request, *args, **kwargs):
        """Add an endpoint. The answer holds its signing secret, this once."""
        writer = EndpointWriteSerializer(data=request.data)
        writer.is_valid(raise_exception=True)
        cleaned = validated(writer.form(None))
        endpoint, secret = services.endpoint_create(
            url=cleaned["url"],
            description=cleaned["description"],
            events=cleaned["events"],
            user=request.user,
        )
        return _with_secret(endpoint, secret, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        endpoint = self.get_object()
        writer = EndpointWriteSerializer(data=request.data, partial=kwargs.get("partial", False))
        writer.is_valid(raise_exception=True)
        cleaned = validated(writer.form(endpoint))
        services.endpoint_update(
            endpoint=endpoint,
            url=cleaned["url"],
            description=cleaned["description"],
            events=cleaned["events"],
        )
        return Response(EndpointSerializer(endpoint).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def perform_destroy(self, instance: Endpoint) -> None:
        services.endpoint_delete(endpoint=instance)

    @extend_schema(request=None, responses=EndpointSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        """Enable the endpoint; its failure streak starts again from nothing."""
        endpoint = self.get_object()
        services.endpoint_enable(endpoint=endpoint)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(request=None, responses=EndpointSerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        """Disable the endpoint; what was waiting to be sent to it is cancelled."""
        endpoint = self.get_object()
        services.endpoint_disable(endpoint=endpoint)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(request=None, responses=EndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """Replace the signing secret; the old one stops signing at once. The answer holds the
        new one, this once."""
        endpoint = self.get_object()
        secret = services.endpoint_rotate_secret(endpoint=endpoint)
        return _with_secret(endpoint, secret, status.HTTP_200_OK)

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Queue a ``webhook.test`` event to the endpoint through the real delivery path (tried
        once, no retries); poll ``deliveries`` for its attempt."""
        delivery = services.endpoint_send_test(endpoint=self.get_object())
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=NewestFirstPagination)
    def deliveries(self, request, pk=None):
        """The endpoint's deliveries, newest first, each with its attempts (status code, error,
        next retry)."""
        endpoint = self.get_object()
        page = self.paginate_queryset(selectors.endpoint_deliveries(endpoint))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)
