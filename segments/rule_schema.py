"""The segment rule tree as JSON Schema, for the OpenAPI document, made from the same constants
``segments.rules.validate`` checks against: the document cannot drift from the builder.

The schema says the shape; what only the data can say (which fields exist and their types,
which segments exist, how deep groups nest) is checked by ``validate`` and answered with a 400
naming the problem. ``GET /fields/`` lists the fields with the operators of each.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from segments import rules

REF = "#/components/schemas/{}"
COMPARISON_OPERATORS = sorted(
    set(rules.OPERATORS) - set(rules.SEGMENT_OPERATORS) - set(rules.CONSENT_OPERATORS)
)
SEGMENT_ID = {
    "anyOf": [
        {"type": "integer"},
        {"type": "string", "pattern": rules.SEGMENT_ID_PATTERN.pattern},
    ],
}


def _operators_by_type() -> str:
    return "; ".join(
        f"{field_type}: {', '.join(operators)}"
        for field_type, operators in rules.OPERATORS_BY_TYPE.items()
    )


def component_schemas() -> dict[str, dict]:
    """The rule components, by name (``Rules`` is the field's schema), in the language of the
    request for the document."""
    segment_id = {**SEGMENT_ID, "description": _("A segment's id (its digits as text too).")}
    return {
        "Rules": {
            "description": _(
                "A segment's definition: a group of conditions, or a combination of other segments."
            ),
            "anyOf": [{"$ref": REF.format("RuleGroup")}, {"$ref": REF.format("RuleCombination")}],
        },
        "RuleGroup": {
            "type": "object",
            "description": _(
                "Conditions matched all together or any one of them; groups nest up to "
                "%(depth)s deep, with at most %(count)s conditions in all."
            )
            % {"depth": rules.MAX_DEPTH, "count": rules.MAX_CONDITIONS},
            "properties": {
                "match": {"enum": list(rules.MATCHES), "default": "all"},
                "conditions": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": rules.MAX_CONDITIONS,
                    "items": {
                        "anyOf": [
                            {"$ref": REF.format("RuleCondition")},
                            {"$ref": REF.format("SegmentCondition")},
                            {"$ref": REF.format("ConsentCondition")},
                            {"$ref": REF.format("RuleGroup")},
                        ]
                    },
                },
            },
            "required": ["conditions"],
        },
        "RuleCondition": {
            "type": "object",
            "description": _(
                "One profile field compared. Operators by field type: %(operators)s. "
                "is_empty, is_not_empty, is_true and is_false take no value."
            )
            % {"operators": _operators_by_type()},
            "properties": {
                "field": {"type": "string", "description": _("A field name from GET /fields/.")},
                "operator": {"enum": COMPARISON_OPERATORS},
                "value": {
                    "description": _(
                        "Text or a number; for in_list, a list of up to %(values)s values (or "
                        "text, one per line); for between, [low, high] (two numbers or two "
                        "dates); for before, after and on, a date such as 2026-03-31; for "
                        "in_last_days, in_last_weeks, in_last_months, more_than_days_ago and "
                        "in_next_days, a whole number from 1 to %(days)s, counted in the refresh "
                        "schedule's time zone."
                    )
                    % {
                        "values": f"{rules.MAX_LIST_VALUES:,}",
                        "days": f"{rules.MAX_RELATIVE_AMOUNT:,}",
                    }
                },
                "case_sensitive": {
                    "description": _("true: text operators tell upper from lower case."),
                    "default": False,
                },
            },
            "required": ["field", "operator"],
        },
        "SegmentCondition": {
            "type": "object",
            "description": _("Membership of another segment (by id)."),
            "properties": {
                "segment": segment_id,
                "operator": {"enum": list(rules.SEGMENT_OPERATORS)},
            },
            "required": ["segment", "operator"],
        },
        "ConsentCondition": {
            "type": "object",
            "description": _(
                "Whether the profile's address has a consent record read back from a "
                "connection: of any state (any), or of one state."
            ),
            "properties": {
                "consent": {"enum": list(rules.CONSENT_CHOICES)},
                "operator": {"enum": list(rules.CONSENT_OPERATORS)},
            },
            "required": ["consent", "operator"],
        },
        "RuleCombination": {
            "type": "object",
            "description": _(
                "Union (members of any), intersection (members of all) or difference (members "
                "of the first and of none of the others) of two or more segments, by id."
            ),
            "properties": {
                "combine": {"enum": list(rules.COMBINATIONS)},
                "segments": {
                    "type": "array",
                    "items": segment_id,
                    "minItems": 2,
                    "uniqueItems": True,
                },
            },
            "required": ["combine", "segments"],
        },
    }


@extend_schema_field({"$ref": REF.format("Rules")})
class RulesField(serializers.JSONField):
    """A segment's rule tree, documented as the ``Rules`` component."""


def add_rule_schemas(result, generator, request, public):
    """Postprocessing hook: the components the ``rules`` fields refer to."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(component_schemas())
    return result
