"""The events that webhook endpoints receive, as the OpenAPI document's ``webhooks`` describe
them (OpenAPI 3.1): an integrator can write a receiver from the document alone.

The bodies themselves are made by ``webhooks.events``; tests/api/test_webhooks.py checks that
each one matches its schema here.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, OpenApiWebhook, extend_schema
from rest_framework import serializers

from exports.models import ExportRun
from webhooks import events


class _Event(serializers.Serializer):
    id = serializers.UUIDField(help_text=_("The Webhook-Id header: the same on every retry."))
    type = serializers.CharField()
    created_at = serializers.DateTimeField()


class ExportLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    url = serializers.URLField(help_text=_("The export's page."))


#: ``profiles`` (the run's members), then each of the run's counts.
RunCountsSerializer = type(
    "RunCountsSerializer",
    (serializers.Serializer,),
    {
        "profiles": serializers.IntegerField(),
        **{name: serializers.IntegerField() for name in ExportRun.COUNTS},
    },
)


class FinishedRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=events.FINISHED_RUN_STATUSES)
    trigger = serializers.ChoiceField(choices=ExportRun.Trigger.values)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    nothing_changed = serializers.BooleanField(
        help_text=_("Nothing changed since the export's last full run: nothing was sent.")
    )
    counts = RunCountsSerializer()


class ExportRunFinishedDataSerializer(serializers.Serializer):
    export = ExportLinkSerializer()
    run = FinishedRunSerializer()


class ExportRunFinishedSerializer(_Event):
    data = ExportRunFinishedDataSerializer()


class GuardNumbersSerializer(serializers.Serializer):
    list_size = serializers.IntegerField(
        help_text=_("Addresses in the destination list before the run.")
    )
    adds = serializers.IntegerField(help_text=_("Addresses the run would add."))
    removals = serializers.IntegerField(help_text=_("Addresses the run would remove."))
    list_size_after = serializers.IntegerField(
        help_text=_("Addresses in the list once the run has sent what it computed.")
    )
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text=_("Why the run stopped, one reason each.")
    )


class HeldRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=[ExportRun.Status.AWAITING_APPROVAL.value])
    trigger = serializers.ChoiceField(choices=ExportRun.Trigger.values)
    started_at = serializers.DateTimeField(allow_null=True)
    url = serializers.URLField(help_text=_("The run's page, where it can be approved."))
    counts = RunCountsSerializer()
    guard = GuardNumbersSerializer()


class ExportRunAwaitingApprovalDataSerializer(serializers.Serializer):
    export = ExportLinkSerializer()
    run = HeldRunSerializer()


class ExportRunAwaitingApprovalSerializer(_Event):
    data = ExportRunAwaitingApprovalDataSerializer()


class DeciderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text=_("The user's full name, or their username."))


class DiscardedRunSerializer(HeldRunSerializer):
    status = serializers.ChoiceField(choices=[ExportRun.Status.DISCARDED.value])
    url = serializers.URLField(help_text=_("The run's page."))
    finished_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_by = DeciderSerializer(
        allow_null=True,
        help_text=_(
            "Who discarded the run; null when it went because its export was detached from its "
            "connection."
        ),
    )


class ExportRunDiscardedDataSerializer(serializers.Serializer):
    export = ExportLinkSerializer()
    run = DiscardedRunSerializer()


class ExportRunDiscardedSerializer(_Event):
    data = ExportRunDiscardedDataSerializer()


class RefreshedSegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    member_count = serializers.IntegerField()
    joined = serializers.IntegerField(
        allow_null=True, help_text=_("Profiles that became members in this refresh.")
    )
    left = serializers.IntegerField(
        allow_null=True, help_text=_("Profiles that stopped being members since the last one.")
    )
    refreshed_at = serializers.DateTimeField(allow_null=True)


class SegmentRefreshedDataSerializer(serializers.Serializer):
    segment = RefreshedSegmentSerializer()


class SegmentRefreshedSerializer(_Event):
    data = SegmentRefreshedDataSerializer()


class ConnectionLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.CharField()


class ConnectionNeedsReauthenticationDataSerializer(serializers.Serializer):
    connection = ConnectionLinkSerializer()


class ConnectionNeedsReauthenticationSerializer(_Event):
    data = ConnectionNeedsReauthenticationDataSerializer()


class TestDataSerializer(serializers.Serializer):
    message = serializers.CharField()


class TestEventSerializer(_Event):
    data = TestDataSerializer()


SIGNED = _(
    "Sent as a POST with the headers Webhook-Id (the event's id, the same on every retry), "
    "Webhook-Timestamp (Unix seconds: refuse one that is too old) and Webhook-Signature: v1= "
    "and the hex HMAC-SHA256 of the timestamp, a dot and the body, keyed with the endpoint's "
    "secret."
)
RECEIVED = {
    200: OpenApiResponse(
        description=_("Any 2xx status: received. Anything else is retried with backoff.")
    )
}


def _webhook(event_type: str, body: type[serializers.Serializer], summary) -> OpenApiWebhook:
    return OpenApiWebhook(
        name=event_type,
        decorator=extend_schema(
            summary=summary,
            request=body,
            description=SIGNED,
            responses=RECEIVED,
        ),
    )


EXPORT_RUN_FINISHED = _webhook(
    events.EXPORT_RUN_FINISHED,
    ExportRunFinishedSerializer,
    _("An export run finished: successful, failed or with warnings."),
)
EXPORT_RUN_AWAITING_APPROVAL = _webhook(
    events.EXPORT_RUN_AWAITING_APPROVAL,
    ExportRunAwaitingApprovalSerializer,
    _(
        "An export run stopped before sending anything and awaits approval (the pre-flight "
        "guard): approve it with POST /api/v1/runs/{id}/approve/, or discard it."
    ),
)
EXPORT_RUN_DISCARDED = _webhook(
    events.EXPORT_RUN_DISCARDED,
    ExportRunDiscardedSerializer,
    _(
        "An export run that awaited approval (the pre-flight guard) was discarded: it sent "
        "nothing, and the list stays as it was."
    ),
)
SEGMENT_REFRESHED = _webhook(
    events.SEGMENT_REFRESHED, SegmentRefreshedSerializer, _("A segment was refreshed.")
)
CONNECTION_NEEDS_REAUTHENTICATION = _webhook(
    events.CONNECTION_NEEDS_REAUTHENTICATION,
    ConnectionNeedsReauthenticationSerializer,
    _("A connection needs re-authentication."),
)
TEST = _webhook(events.TEST, TestEventSerializer, _("A test event (Send test event)."))
