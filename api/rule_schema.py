"""The segment rule tree as JSON Schema, for the OpenAPI document, made from the same constants
``segments.rules.validate`` checks against: the document cannot drift from the builder.

The schema says the shape; what only the data can say (which fields exist and their types,
which segments exist, how deep groups nest) is checked by ``validate`` and answered with a 400
naming the problem. ``GET /fields/`` lists the fields with the operators of each.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from segments import rules

REF = "#/components/schemas/{}"
COMPARISON_OPERATORS = sorted(set(rules.OPERATORS) - set(rules.SEGMENT_OPERATORS))
SEGMENT_ID = {
    "anyOf": [
        {"type": "integer"},
        {"type": "string", "pattern": rules.SEGMENT_ID_PATTERN.pattern},
    ],
    "description": "A segment's id (its digits as text are accepted too).",
}


def _operators_by_type() -> str:
    return "; ".join(
        f"{field_type}: {', '.join(operators)}"
        for field_type, operators in rules.OPERATORS_BY_TYPE.items()
    )


def component_schemas() -> dict[str, dict]:
    """The rule components, by name (``Rules`` is the field's schema)."""
    return {
        "Rules": {
            "description": (
                "A segment's definition: a group of conditions, or a combination of other segments."
            ),
            "anyOf": [{"$ref": REF.format("RuleGroup")}, {"$ref": REF.format("RuleCombination")}],
        },
        "RuleGroup": {
            "type": "object",
            "description": (
                f"Conditions matched all together or any one of them; groups nest up to "
                f"{rules.MAX_DEPTH} deep, with at most {rules.MAX_CONDITIONS} conditions in all."
            ),
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
                            {"$ref": REF.format("RuleGroup")},
                        ]
                    },
                },
            },
            "required": ["conditions"],
        },
        "RuleCondition": {
            "type": "object",
            "description": (
                f"One profile field compared. Operators by field type: {_operators_by_type()}. "
                "is_empty, is_not_empty, is_true and is_false take no value."
            ),
            "properties": {
                "field": {"type": "string", "description": "A field name from GET /fields/."},
                "operator": {"enum": COMPARISON_OPERATORS},
                "value": {
                    "description": (
                        "Text or a number; for in_list, a list of up to "
                        f"{rules.MAX_LIST_VALUES:,} values (or text, one per line); for "
                        "between, [low, high] (two numbers or two dates); for before, after "
                        "and on, a date such as 2026-03-31; for in_last_days, in_last_weeks, "
                        "in_last_months, more_than_days_ago and in_next_days, a whole number "
                        f"from 1 to {rules.MAX_RELATIVE_AMOUNT:,}, counted in the refresh "
                        "schedule's time zone."
                    )
                },
                "case_sensitive": {
                    "description": "true: text operators tell upper from lower case.",
                    "default": False,
                },
            },
            "required": ["field", "operator"],
        },
        "SegmentCondition": {
            "type": "object",
            "description": "Membership of another segment (by id).",
            "properties": {
                "segment": SEGMENT_ID,
                "operator": {"enum": list(rules.SEGMENT_OPERATORS)},
            },
            "required": ["segment", "operator"],
        },
        "RuleCombination": {
            "type": "object",
            "description": (
                "Union (members of any), intersection (members of all) or difference (members "
                "of the first and of none of the others) of two or more segments, by id."
            ),
            "properties": {
                "combine": {"enum": list(rules.COMBINATIONS)},
                "segments": {
                    "type": "array",
                    "items": SEGMENT_ID,
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
