"""Exclusions (administrators only): addresses, domains and segments that no export ever sends.

Validation is the pages' forms (``exports.exclusion_forms``) and every write the
``exports.exclusions`` function the pages call, each recorded in the audit log.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.filtering import FilterSet, IdFilter, TextFilter
from api.forms import validated
from core.consent import ConsentState
from exports import consent, exclusions, selectors
from exports.exclusion_forms import (
    ConsentRuleForm,
    ExclusionForm,
    ExclusionNoteForm,
    PastedExclusionsForm,
)
from exports.models import ConsentRule, Exclusion
from exports.permissions import MANAGE_EXCLUSION


class ExclusionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Exclusion
        fields = ["id", "kind", "value", "segment", "note", "created_at", "updated_at"]
        read_only_fields = fields
        extra_kwargs = {
            "value": {
                "help_text": _(
                    "The address or domain (lower-case, trimmed); empty for a segment. A domain "
                    "matches exactly: example.org does not exclude mail.example.org."
                )
            },
            "segment": {"help_text": _("The segment whose members are excluded, or null.")},
        }


class ExclusionCreateSerializer(serializers.Serializer):
    """Shapes the request for the page's form, which does the checking."""

    kind = serializers.ChoiceField(choices=Exclusion.Kind.choices)
    value = serializers.CharField(
        max_length=400,
        required=False,
        allow_blank=True,
        help_text=_("For an address or a domain: the address, or the domain (like example.org)."),
    )
    segment = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text=_("For a segment: its id.")
    )
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)


class ExclusionNoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=200, allow_blank=True)


class ExclusionBulkSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[(Exclusion.Kind.ADDRESS, "address"), (Exclusion.Kind.DOMAIN, "domain")]
    )
    values = serializers.ListField(
        child=serializers.CharField(max_length=400, allow_blank=True),
        min_length=1,
        max_length=exclusions.MAX_PASTED_LINES,
        help_text=_(
            "Addresses or domains, trimmed and lower-cased; repeats count once. When one is not "
            "valid nothing is added, and the answer names each by its position (from 1)."
        ),
    )
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def validate_values(self, values: list[str]) -> list[str]:
        if any("\n" in value or "\r" in value for value in values):
            raise serializers.ValidationError(_("A value cannot hold a line break."))
        return values


class ExclusionBulkResultSerializer(serializers.Serializer):
    added = serializers.IntegerField(help_text=_("How many were excluded now."))
    already = serializers.IntegerField(help_text=_("How many were excluded already."))
    duplicates = serializers.IntegerField(help_text=_("How many repeated an earlier value."))


class ConsentCountSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=ConsentState.choices)
    addresses = serializers.IntegerField(
        help_text=_("How many addresses consent records of this state exclude now.")
    )


class ConsentRuleSerializer(serializers.ModelSerializer):
    excluded_by_state = serializers.SerializerMethodField(
        help_text=_("How many addresses the consent records exclude now, per state.")
    )

    class Meta:
        model = ConsentRule
        fields = ["scope", "updated_at", "excluded_by_state"]
        read_only_fields = fields
        extra_kwargs = {
            "scope": {
                "help_text": _(
                    "Whom a consent record (a person who unsubscribed, bounced, complained, was "
                    "cleaned or suppressed at a connection) keeps out: every export, or only the "
                    "exports of that connection. A record whose connection was removed keeps the "
                    "person out of every export either way."
                )
            }
        }

    @extend_schema_field(ConsentCountSerializer(many=True))
    def get_excluded_by_state(self, rule: ConsentRule) -> list[dict]:
        return [
            {"state": state, "addresses": count}
            for state, _label, count in selectors.consent_exclusion_counts()
        ]


class ConsentRuleUpdateSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=ConsentRule.Scope.choices)


class ExclusionFilter(FilterSet):
    kind = TextFilter(field_name="kind")
    value = TextFilter(field_name="value", lookup_expr="icontains")
    segment = IdFilter(field_name="segment_id")

    class Meta:
        model = Exclusion
        fields = ["kind", "value", "segment"]


@extend_schema_view(
    create=extend_schema(request=ExclusionCreateSerializer, responses={201: ExclusionSerializer}),
    update=extend_schema(request=ExclusionNoteSerializer, responses=ExclusionSerializer),
    partial_update=extend_schema(request=ExclusionNoteSerializer, responses=ExclusionSerializer),
)
class ExclusionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Addresses, domains and segments that no export ever sends, in any mode: runs count
    their members as ``excluded`` and list them among the skipped with the rule, and mirror
    exports remove them from their lists. What an exclusion keeps out is fixed; only its note
    changes (remove it and add another instead)."""

    serializer_class = ExclusionSerializer
    filterset_class = ExclusionFilter
    required_permissions = dict.fromkeys(
        (
            "list",
            "retrieve",
            "create",
            "update",
            "partial_update",
            "destroy",
            "bulk",
            "consent_rule",
        ),
        MANAGE_EXCLUSION,
    )

    def get_queryset(self):
        return Exclusion.objects.order_by("id")

    def create(self, request, *args, **kwargs):
        """Exclude one address, domain or segment."""
        writer = ExclusionCreateSerializer(data=request.data)
        writer.is_valid(raise_exception=True)
        cleaned = validated(ExclusionForm(writer.validated_data))
        note = cleaned.get("note") or ""
        try:
            if cleaned["kind"] == Exclusion.Kind.SEGMENT:
                exclusion = exclusions.exclusion_add_segment(
                    segment=cleaned["segment"], note=note, user=request.user
                )
            else:
                existing = Exclusion.objects.filter(
                    kind=cleaned["kind"], value=cleaned["value"]
                ).first()
                if existing is not None:
                    raise exclusions.ExclusionError(
                        [_("“%(value)s” is excluded already.") % {"value": cleaned["value"]}]
                    )
                exclusions.exclusions_add(
                    kind=cleaned["kind"], values=[cleaned["value"]], note=note, user=request.user
                )
                exclusion = Exclusion.objects.get(kind=cleaned["kind"], value=cleaned["value"])
        except exclusions.ExclusionError as error:
            raise serializers.ValidationError({"non_field_errors": error.messages}) from None
        return Response(ExclusionSerializer(exclusion).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        """Change the note."""
        exclusion = self.get_object()
        writer = ExclusionNoteSerializer(data=request.data)
        writer.is_valid(raise_exception=True)
        cleaned = validated(ExclusionNoteForm(writer.validated_data))
        exclusions.exclusion_update(exclusion=exclusion, note=cleaned["note"])
        return Response(ExclusionSerializer(exclusion).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, **kwargs)

    def perform_destroy(self, instance: Exclusion) -> None:
        exclusions.exclusion_delete(exclusion=instance)

    @extend_schema(
        request=ExclusionBulkSerializer,
        responses={200: ExclusionBulkResultSerializer},
        filters=False,
    )
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def bulk(self, request):
        """Exclude up to 10,000 addresses or domains at once, as the page's paste does."""
        writer = ExclusionBulkSerializer(data=request.data)
        writer.is_valid(raise_exception=True)
        kind = writer.validated_data["kind"]
        form = PastedExclusionsForm(
            {
                "lines": "\n".join(writer.validated_data["values"]),
                "note": writer.validated_data.get("note", ""),
            },
            kind=kind,
        )
        if not form.is_valid():
            # The form names the pasted text "lines"; here they are the values.
            raise serializers.ValidationError(
                {
                    "values" if name == "lines" else name: list(errors)
                    for name, errors in form.errors.items()
                }
            )
        cleaned = form.cleaned_data
        try:
            added = exclusions.exclusions_add(
                kind=kind, values=cleaned["pasted"].values, note=cleaned["note"], user=request.user
            )
        except exclusions.ExclusionError as error:
            raise serializers.ValidationError({"values": error.messages}) from None
        return Response(
            {
                "added": added.added,
                "already": added.already,
                "duplicates": cleaned["pasted"].duplicates,
            }
        )

    @extend_schema(methods=["GET"], responses=ConsentRuleSerializer, filters=False)
    @extend_schema(
        methods=["PUT"],
        request=ConsentRuleUpdateSerializer,
        responses=ConsentRuleSerializer,
        filters=False,
    )
    @action(
        detail=False,
        methods=["get", "put"],
        url_path="consent-rule",
        filterset_class=None,
        pagination_class=None,
    )
    def consent_rule(self, request):
        """Whom the consent records keep out of the exports (Admin > Exclusions), and how many
        addresses they exclude now; PUT changes it from the next run on (audited)."""
        if request.method == "PUT":
            writer = ConsentRuleUpdateSerializer(data=request.data)
            writer.is_valid(raise_exception=True)
            cleaned = validated(ConsentRuleForm(writer.validated_data))
            consent.rule_save(scope=cleaned["scope"], user=request.user)
        return Response(ConsentRuleSerializer(ConsentRule.load()).data)
