"""Segment rules: a JSON tree of conditions, validated and compiled to one Django ``Q``.

A rule tree is a group::

    {"match": "all" | "any",
     "conditions": [{"field": "email", "operator": "contains", "value": "@example.com"},
                    {"match": "any", "conditions": [...]}]}

Text comparisons ignore case. ``greater_than`` / ``less_than`` compare numbers when the value
is a number (attributes of another type never match), and text otherwise (ISO dates compare
correctly as text). ``not_equals`` also matches profiles that have no value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Expression, F, FloatField, Func, Q, TextField, Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Lower
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    IContains,
    IExact,
    In,
    IsNull,
    IStartsWith,
    LessThan,
)
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

BUILTIN_FIELDS = ("customer_id", "email", "first_name", "last_name")
MAX_DEPTH = 5
MAX_CONDITIONS = 100

OPERATORS = {
    "equals": gettext_lazy("equals"),
    "not_equals": gettext_lazy("does not equal"),
    "contains": gettext_lazy("contains"),
    "starts_with": gettext_lazy("starts with"),
    "is_empty": gettext_lazy("is empty"),
    "is_not_empty": gettext_lazy("is not empty"),
    "greater_than": gettext_lazy("is greater than"),
    "less_than": gettext_lazy("is less than"),
    "in_list": gettext_lazy("is one of"),
}
OPERATORS_WITHOUT_VALUE = {"is_empty", "is_not_empty"}
MATCHES = {"all": gettext_lazy("all of"), "any": gettext_lazy("any of")}

NUMBER_PATTERN = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?$")


class RuleError(ValueError):
    """A rule tree that cannot be compiled; the message says what to fix."""


def parse_number(text: Any) -> Decimal | None:
    """The value as a number if it is written as one (no leading zeros: "0047" is text)."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return Decimal(str(text))
    if isinstance(text, str) and NUMBER_PATTERN.match(text.strip()):
        try:
            return Decimal(text.strip())
        except InvalidOperation:
            return None
    return None


def validate(tree: Any, known_fields: Iterable[str]) -> dict:
    """Check a rule tree and return it normalised; raise RuleError saying what is wrong."""
    fields = set(known_fields) | set(BUILTIN_FIELDS)
    counter = [0]
    return _validate_group(tree, fields, depth=1, counter=counter)


def _validate_group(group: Any, fields: set[str], depth: int, counter: list[int]) -> dict:
    if not isinstance(group, dict) or "conditions" not in group:
        raise RuleError(
            _("The rules are not in the expected form. Start again from an empty rule.")
        )
    if depth > MAX_DEPTH:
        raise RuleError(_("Groups can be nested at most %(depth)d deep.") % {"depth": MAX_DEPTH})
    match = group.get("match", "all")
    if match not in MATCHES:
        raise RuleError(_("A group must match all or any of its conditions."))
    conditions = group.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise RuleError(_("Every group needs at least one condition. Add one or remove the group."))
    normalised = []
    for item in conditions:
        if isinstance(item, dict) and "conditions" in item:
            normalised.append(_validate_group(item, fields, depth + 1, counter))
        else:
            counter[0] += 1
            if counter[0] > MAX_CONDITIONS:
                raise RuleError(
                    _("A segment can have at most %(count)d conditions.")
                    % {"count": MAX_CONDITIONS}
                )
            normalised.append(_validate_condition(item, fields))
    return {"match": match, "conditions": normalised}


def _validate_condition(condition: Any, fields: set[str]) -> dict:
    if not isinstance(condition, dict):
        raise RuleError(_("A condition is not in the expected form. Remove it and add it again."))
    field = condition.get("field")
    operator = condition.get("operator")
    if not field:
        raise RuleError(_("Choose a profile field for every condition."))
    if field not in fields:
        raise RuleError(
            _("There is no profile field called “%(field)s”. Choose one from the list.")
            % {"field": field}
        )
    if operator not in OPERATORS:
        raise RuleError(_("Choose how “%(field)s” is compared.") % {"field": field})
    if operator in OPERATORS_WITHOUT_VALUE:
        return {"field": field, "operator": operator}
    value = condition.get("value")
    if operator == "in_list":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if not isinstance(value, list):
            raise RuleError(
                _("Give a comma-separated list of values for “%(field)s”.") % {"field": field}
            )
        value = [str(part).strip() for part in value if str(part).strip()]
        if not value:
            raise RuleError(_("Give at least one value for “%(field)s”.") % {"field": field})
        return {"field": field, "operator": operator, "value": value}
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise RuleError(
            _("Give a value to compare “%(field)s” with, or choose “is empty”.") % {"field": field}
        )
    return {"field": field, "operator": operator, "value": value.strip()}


def compile_rules(tree: dict) -> Q:
    """Compile a validated rule tree to a Q over ``Profile``."""
    return _compile_group(tree)


def _compile_group(group: dict) -> Q:
    parts = [
        _compile_group(item) if "conditions" in item else _compile_condition(item)
        for item in group["conditions"]
    ]
    combined = parts[0]
    for part in parts[1:]:
        combined = (combined & part) if group["match"] == "all" else (combined | part)
    return combined


def _text(field: str) -> Expression:
    if field in BUILTIN_FIELDS:
        return F(field)
    return KeyTextTransform(field, "attributes")


def _is_empty(field: str) -> Q:
    return Q(IsNull(_text(field), True)) | Q(Exact(_text(field), Value("", TextField())))


def _compile_condition(condition: dict) -> Q:
    field, operator, value = condition["field"], condition["operator"], condition.get("value")
    text = _text(field)
    if operator == "equals":
        return Q(IExact(text, value))
    if operator == "not_equals":
        return _is_empty(field) | ~Q(IExact(text, value))
    if operator == "contains":
        return Q(IContains(text, value))
    if operator == "starts_with":
        return Q(IStartsWith(text, value))
    if operator == "is_empty":
        return _is_empty(field)
    if operator == "is_not_empty":
        return ~_is_empty(field)
    if operator == "in_list":
        return Q(In(Lower(text), [part.lower() for part in value]))
    comparison = GreaterThan if operator == "greater_than" else LessThan
    number = parse_number(value)
    if number is not None and field not in BUILTIN_FIELDS:
        return Q(comparison(_AttributeNumber(field), float(number)))
    return Q(comparison(text, value))


class _AttributeNumber(Func):
    """The attribute's value when it holds a JSON number, else NULL.

    A CASE (not an AND) guards the cast: PostgreSQL does not promise to evaluate AND in order.
    """

    output_field = FloatField()

    def __init__(self, key: str) -> None:
        super().__init__(KeyTransform(key, "attributes"), KeyTextTransform(key, "attributes"))

    def as_postgresql(self, compiler, connection, **extra):
        json_sql, json_params = compiler.compile(self.source_expressions[0])
        text_sql, text_params = compiler.compile(self.source_expressions[1])
        sql = f"(CASE WHEN jsonb_typeof({json_sql}) = 'number' THEN ({text_sql})::float8 END)"
        return sql, (*json_params, *text_params)

    def as_sqlite(self, compiler, connection, **extra):
        json_sql, json_params = compiler.compile(self.source_expressions[0])
        sql = f"(CASE WHEN typeof({json_sql}) IN ('integer', 'real') THEN {json_sql} END)"
        return sql, (*json_params, *json_params)


def describe(tree: dict) -> dict:
    """The tree with a readable label for each operator and value, for display."""
    conditions = []
    for item in tree["conditions"]:
        if "conditions" in item:
            conditions.append(describe(item))
            continue
        value = item.get("value", "")
        conditions.append(
            {
                **item,
                "operator_label": OPERATORS.get(item["operator"], item["operator"]),
                "value_text": ", ".join(value) if isinstance(value, list) else value,
            }
        )
    return {"match": tree.get("match", "all"), "conditions": conditions}
