"""Segment rules: a JSON tree, validated by ``validate`` and compiled to one Django ``Q``.

A segment is defined either by conditions::

    {"match": "all" | "any",
     "conditions": [{"field": "email", "operator": "contains", "value": "@example.com"},
                    {"segment": 7, "operator": "member_of"},
                    {"match": "any", "conditions": [...]}]}

or as a combination of other segments (the first one minus the others for a difference)::

    {"combine": "union" | "intersection" | "difference", "segments": [7, 9]}

A consent condition selects the profiles whose address has (or has not) a consent record: one
of any state (``"consent": "any"``) or of one state (``"consent": "bounced"``)::

    {"consent": "any", "operator": "opted_out" | "not_opted_out"}

Each field type has its operators (``OPERATORS_BY_TYPE``). Text comparisons ignore case unless
the condition says ``"case_sensitive": true``. Number comparisons only see JSON numbers.

Dates are ISO 8601 text ("2026-03-01", "2026-03-01T08:30:00+01:00"); a date-time counts on the
calendar day it is written with. A field is typed as a date only when every imported value is
one; date comparisons are ranges of ISO text, so empty text and words never match them.
Relative operators ("in the last 7 days") count calendar days
back from ``today``, which the refresh takes in the refresh schedule's time zone: "in the last N
days" is today and the N days before it; "in the next N days" is today and the N days after it;
"more than N days ago" is before the day N days back.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import (
    Exists,
    Expression,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    TextField,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Left, Length, Lower, Right, StrIndex, Substr, Trim
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IEndsWith,
    IExact,
    In,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
    Range,
)
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.text import unstorable_in
from core.consent import ConsentState

BUILTIN_FIELDS = ("customer_id", "email", "first_name", "last_name")
MAX_DEPTH = 5
#: Lists and objects in a tree of MAX_DEPTH groups nest about 12 deep; deeper is refused early.
MAX_NESTING = 16
MAX_CONDITIONS = 100
MAX_LIST_VALUES = 10_000
MAX_RELATIVE_AMOUNT = 36_500

OPERATORS = {
    "equals": gettext_lazy("equals"),
    "not_equals": gettext_lazy("does not equal"),
    "contains": gettext_lazy("contains"),
    "starts_with": gettext_lazy("starts with"),
    "ends_with": gettext_lazy("ends with"),
    "in_list": gettext_lazy("is one of"),
    "is_empty": gettext_lazy("is empty"),
    "is_not_empty": gettext_lazy("is not empty"),
    "greater_than": gettext_lazy("is greater than"),
    "less_than": gettext_lazy("is less than"),
    "between": gettext_lazy("is between"),
    "before": gettext_lazy("is before"),
    "after": gettext_lazy("is after"),
    "on": gettext_lazy("is on"),
    "in_last_days": gettext_lazy("is in the last … days"),
    "in_last_weeks": gettext_lazy("is in the last … weeks"),
    "in_last_months": gettext_lazy("is in the last … months"),
    "more_than_days_ago": gettext_lazy("is more than … days ago"),
    "in_next_days": gettext_lazy("is in the next … days"),
    "is_true": gettext_lazy("is true"),
    "is_false": gettext_lazy("is false"),
    "member_of": gettext_lazy("is a member of"),
    "not_member_of": gettext_lazy("is not a member of"),
    "opted_out": gettext_lazy("has opted out"),
    "not_opted_out": gettext_lazy("has not opted out"),
}
OPERATORS_WITHOUT_VALUE = {"is_empty", "is_not_empty", "is_true", "is_false"}
# A tuple, not a set: the builder and the API document list them in this order, in every process.
TEXT_OPERATORS = ("equals", "not_equals", "contains", "starts_with", "ends_with", "in_list")
CASE_OPERATORS = TEXT_OPERATORS
RELATIVE_OPERATORS = {
    "in_last_days",
    "in_last_weeks",
    "in_last_months",
    "more_than_days_ago",
    "in_next_days",
}
DATE_OPERATORS = ["before", "after", "on", "between", *sorted(RELATIVE_OPERATORS)]
SEGMENT_OPERATORS = ["member_of", "not_member_of"]
CONSENT_OPERATORS = ["opted_out", "not_opted_out"]
#: What a consent condition looks for: a record of any state, or of one state.
ANY_CONSENT = "any"
CONSENT_CHOICES = {ANY_CONSENT: gettext_lazy("Any opt-out or bounce"), **dict(ConsentState.choices)}
OPERATORS_BY_TYPE = {
    "text": [*TEXT_OPERATORS, "is_empty", "is_not_empty"],
    "number": [
        "equals",
        "not_equals",
        "greater_than",
        "less_than",
        "between",
        "in_list",
        "is_empty",
        "is_not_empty",
    ],
    "date": [*DATE_OPERATORS, "is_empty", "is_not_empty"],
    "datetime": [*DATE_OPERATORS, "is_empty", "is_not_empty"],
    "boolean": ["is_true", "is_false", "is_empty", "is_not_empty"],
}
MATCHES = {"all": gettext_lazy("all of"), "any": gettext_lazy("any of")}
COMBINATIONS = {
    "union": gettext_lazy("Union: members of any of these segments"),
    "intersection": gettext_lazy("Intersection: members of all of these segments"),
    "difference": gettext_lazy(
        "Difference: members of the first segment but of none of the others"
    ),
}
TRUE_TEXTS = ["true", "1", "yes"]
FALSE_TEXTS = ["false", "0", "no"]

NUMBER_PATTERN = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?$")
SEGMENT_ID_PATTERN = re.compile(r"^\s*[0-9]+\s*$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}")


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


def parse_date(text: Any) -> date | None:
    """The calendar date an ISO date or date-time is written with, or None."""
    if not isinstance(text, str) or not DATE_PATTERN.match(text.strip()):
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def validate(
    tree: Any,
    known_fields: Iterable[str] | Mapping[str, str] | None = None,
    known_segments: Iterable[int] | None = None,
    *,
    for_segment: int | None = None,
) -> dict:
    """Check a rule tree and return it normalised; raise RuleError saying what is wrong.

    The one check every way in (builder, API, refresh) goes through. ``known_fields`` maps
    field names to types (operators are then checked against the type) or lists names only;
    ``known_segments`` lists the segment ids that may be used. Left out, both are read from the
    database. With ``for_segment``, a tree that would make that segment depend on itself is
    refused, naming the path.
    """
    if known_fields is None or known_segments is None:
        from segments.selectors import field_types, segment_ids

        known_fields = field_types() if known_fields is None else known_fields
        known_segments = segment_ids() if known_segments is None else known_segments
    if isinstance(known_fields, Mapping):
        types: dict[str, str | None] = dict(known_fields)
    else:
        types = dict.fromkeys(known_fields)
    for name in BUILTIN_FIELDS:
        types.setdefault(name, "text")
    segments = {int(pk) for pk in known_segments}
    _refuse_unstorable(tree)
    if isinstance(tree, dict) and "combine" in tree:
        normalised = _validate_combination(tree, segments)
    else:
        normalised = _validate_group(tree, types, segments, depth=1, counter=[0])
    if for_segment is not None:
        from segments.dependencies import refuse_cycle

        refuse_cycle(for_segment, segments_used(normalised))
    return normalised


def _refuse_unstorable(tree: Any) -> None:
    """Text that cannot be stored (NUL, a lone surrogate) anywhere in the tree, or nesting
    deeper than any valid tree, is refused before anything else reads it."""
    found = unstorable_in(tree, max_depth=MAX_NESTING)
    if found is None:
        return
    if found.problem is None:
        raise RuleError(_("Groups can be nested at most %(depth)d deep.") % {"depth": MAX_DEPTH})
    raise RuleError(
        _("The rules hold %(problem)s at %(path)s, which cannot be stored. Remove it.")
        % {"problem": found.problem, "path": found.path or "rules"}
    )


def _one_of(value: Any, choices) -> bool:
    """Whether the value is one of the (text) choices; a list or an object never is (and
    would not even be hashable)."""
    return isinstance(value, str) and value in choices


def _validate_combination(tree: dict, segments: set[int]) -> dict:
    combine = tree.get("combine")
    if not _one_of(combine, COMBINATIONS):
        raise RuleError(_("Choose union, intersection or difference."))
    chosen = tree.get("segments")
    if not isinstance(chosen, list):
        raise RuleError(_("Choose the segments to combine."))
    ids = [_segment_id(item, segments) for item in chosen]
    if len(set(ids)) != len(ids):
        raise RuleError(_("Each segment can be chosen only once."))
    if len(ids) < 2:
        raise RuleError(_("Choose at least two segments to combine."))
    return {"combine": combine, "segments": ids}


def _segment_id(value: Any, segments: set[int]) -> int:
    """A segment's id, given as a whole number or as its digits (the builder sends text)."""
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer()
    )
    digits = isinstance(value, str) and SEGMENT_ID_PATTERN.match(value)
    pk = int(value) if whole or digits else None
    if pk is None or pk not in segments:
        raise RuleError(_("One of the chosen segments no longer exists. Choose it again."))
    return pk


def _validate_group(
    group: Any, types: dict[str, str | None], segments: set[int], depth: int, counter: list[int]
) -> dict:
    if not isinstance(group, dict) or "conditions" not in group:
        raise RuleError(
            _("The rules are not in the expected form. Start again from an empty rule.")
        )
    if depth > MAX_DEPTH:
        raise RuleError(_("Groups can be nested at most %(depth)d deep.") % {"depth": MAX_DEPTH})
    match = group.get("match", "all")
    if not _one_of(match, MATCHES):
        raise RuleError(_("A group must match all or any of its conditions."))
    conditions = group.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise RuleError(_("Every group needs at least one condition. Add one or remove the group."))
    normalised = []
    for item in conditions:
        if isinstance(item, dict) and "conditions" in item:
            normalised.append(_validate_group(item, types, segments, depth + 1, counter))
            continue
        counter[0] += 1
        if counter[0] > MAX_CONDITIONS:
            raise RuleError(
                _("A segment can have at most %(count)d conditions.") % {"count": MAX_CONDITIONS}
            )
        if isinstance(item, dict) and "segment" in item:
            normalised.append(_validate_membership(item, segments))
        elif isinstance(item, dict) and "consent" in item:
            normalised.append(_validate_consent(item))
        else:
            normalised.append(_validate_condition(item, types))
    return {"match": match, "conditions": normalised}


def _validate_membership(condition: dict, segments: set[int]) -> dict:
    operator = condition.get("operator")
    if not _one_of(operator, SEGMENT_OPERATORS):
        raise RuleError(_("Choose “is a member of” or “is not a member of” for a segment."))
    return {"segment": _segment_id(condition.get("segment"), segments), "operator": operator}


def _validate_consent(condition: dict) -> dict:
    consent = condition.get("consent")
    if not _one_of(consent, CONSENT_CHOICES):
        raise RuleError(
            _("Choose which opt-out a consent condition looks for: any, or one of %(states)s.")
            % {"states": ", ".join(str(label) for label in ConsentState.labels)}
        )
    operator = condition.get("operator")
    if not _one_of(operator, CONSENT_OPERATORS):
        raise RuleError(_("Choose “has opted out” or “has not opted out” for consent."))
    return {"consent": consent, "operator": operator}


def _validate_condition(condition: Any, types: dict[str, str | None]) -> dict:
    if not isinstance(condition, dict):
        raise RuleError(_("A condition is not in the expected form. Remove it and add it again."))
    field = condition.get("field")
    operator = condition.get("operator")
    if not field:
        raise RuleError(_("Choose a profile field for every condition."))
    if not _one_of(field, types):
        raise RuleError(
            _("There is no profile field called “%(field)s”. Choose one from the list.")
            % {"field": field}
        )
    # Messages name the field as the builder shows it ("Signup date", not "signup_date").
    label = _field_label(field)
    if not _one_of(operator, OPERATORS) or operator in (*SEGMENT_OPERATORS, *CONSENT_OPERATORS):
        raise RuleError(_("Choose how “%(field)s” is compared.") % {"field": label})
    field_type = types[field]
    if field_type is not None and operator not in OPERATORS_BY_TYPE.get(field_type, ()):
        raise RuleError(
            _("“%(field)s” holds %(type)s values: “%(operator)s” does not apply to it.")
            % {"field": label, "type": _type_label(field_type), "operator": OPERATORS[operator]}
        )
    normalised: dict[str, Any] = {"field": field, "operator": operator}
    if operator in OPERATORS_WITHOUT_VALUE:
        return normalised
    if operator in CASE_OPERATORS and condition.get("case_sensitive") is True:
        normalised["case_sensitive"] = True
    normalised["value"] = _validate_value(label, operator, condition.get("value"))
    return normalised


def _field_label(field: str) -> str:
    from segments.catalogue import field_label  # the catalogue reads this module's names

    return field_label(field)


def _type_label(field_type: str) -> str:
    from segments.models import ProfileField

    return str(dict(ProfileField.DataType.choices).get(field_type, field_type)).lower()


def _validate_value(label: str, operator: str, value: Any) -> Any:
    if operator == "in_list":
        return _validate_list(label, value)
    if operator == "between":
        return _validate_between(label, value)
    if operator in RELATIVE_OPERATORS:
        amount = parse_number(value.strip() if isinstance(value, str) else value)
        if amount is None or amount != int(amount) or not 0 < amount <= MAX_RELATIVE_AMOUNT:
            raise RuleError(
                _("Give a whole number of at least 1 for “%(field)s”.") % {"field": label}
            )
        return int(amount)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise RuleError(
            _("Give a value to compare “%(field)s” with, or choose “is empty”.") % {"field": label}
        )
    value = value.strip()
    if operator in ("before", "after", "on"):
        day = parse_date(value)
        if day is None:
            raise RuleError(_("Give a date such as 2026-03-31 for “%(field)s”.") % {"field": label})
        return day.isoformat()
    return value


def _validate_list(label: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.splitlines() if "\n" in value else value.split(",")
    if not isinstance(value, list):
        raise RuleError(_("Give the values for “%(field)s”, one per line.") % {"field": label})
    value = [str(part).strip() for part in value if str(part).strip()]
    if not value:
        raise RuleError(_("Give at least one value for “%(field)s”.") % {"field": label})
    if len(value) > MAX_LIST_VALUES:
        raise RuleError(
            _("“%(field)s” can be compared with at most %(count)s values.")
            % {"field": label, "count": f"{MAX_LIST_VALUES:,}"}
        )
    return value


def _validate_between(label: str, value: Any) -> list:
    if isinstance(value, list) and len(value) == 2:
        low, high = (str(part).strip() for part in value)
        low_date, high_date = parse_date(low), parse_date(high)
        if low_date and high_date:
            return sorted([low_date.isoformat(), high_date.isoformat()])
        low_number, high_number = parse_number(low), parse_number(high)
        if low_number is not None and high_number is not None:
            return [str(v) for v in sorted([low_number, high_number])]
    raise RuleError(
        _("Give both ends of the range for “%(field)s” (two numbers or two dates).")
        % {"field": label}
    )


def segments_used(tree: dict) -> set[int]:
    """The ids of the segments a validated tree reads members from."""
    if "combine" in tree:
        return set(tree["segments"])
    used: set[int] = set()
    for item in tree["conditions"]:
        if "conditions" in item:
            used |= segments_used(item)
        elif "segment" in item:
            used.add(item["segment"])
    return used


def uses_consent(tree: dict) -> bool:
    """Whether the members depend on the consent records (refresh again when they change)."""
    if "combine" in tree:
        return False
    return any(
        uses_consent(item) if "conditions" in item else "consent" in item
        for item in tree["conditions"]
    )


def uses_relative_dates(tree: dict) -> bool:
    """Whether the members can change from one day to the next with nothing else changing."""
    if "combine" in tree:
        return False
    return any(
        uses_relative_dates(item)
        if "conditions" in item
        else item["operator"] in RELATIVE_OPERATORS
        for item in tree["conditions"]
    )


def compile_rules(tree: dict, *, today: date | None = None) -> Q:
    """Compile a validated rule tree to a Q over ``Profile``.

    ``today`` anchors relative dates (default: today in UTC). Membership of other segments is
    read from their materialised members, so refresh those first.
    """
    today = today or timezone.now().date()
    if "combine" in tree:
        return _compile_combination(tree)
    return _compile_group(tree, today)


def _members_of(*segment_ids: int) -> Q:
    from segments.models import SegmentMember

    if len(segment_ids) == 1:
        members = SegmentMember.objects.filter(segment_id=segment_ids[0])
    else:
        members = SegmentMember.objects.filter(segment_id__in=segment_ids)
    return Q(pk__in=members.values("profile_id"))


def _compile_combination(tree: dict) -> Q:
    first, *others = tree["segments"]
    if tree["combine"] == "union":
        return _members_of(*tree["segments"])
    combined = _members_of(first)
    for other in others:
        combined &= _members_of(other) if tree["combine"] == "intersection" else ~_members_of(other)
    return combined


def _compile_group(group: dict, today: date) -> Q:
    parts = [
        _compile_group(item, today) if "conditions" in item else _compile_condition(item, today)
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


def _compile_condition(condition: dict, today: date) -> Q:
    operator, value = condition["operator"], condition.get("value")
    if "consent" in condition:
        opted_out = _opted_out(condition["consent"])
        return opted_out if operator == "opted_out" else ~opted_out
    if operator in SEGMENT_OPERATORS:
        members = _members_of(condition["segment"])
        return members if operator == "member_of" else ~members
    field = condition["field"]
    text = _text(field)
    if operator in TEXT_OPERATORS:
        return _compile_text(field, operator, value, condition.get("case_sensitive", False))
    if operator == "is_empty":
        return _is_empty(field)
    if operator == "is_not_empty":
        return ~_is_empty(field)
    if operator in ("is_true", "is_false"):
        return Q(In(Lower(text), TRUE_TEXTS if operator == "is_true" else FALSE_TEXTS))
    if operator in DATE_OPERATORS and (operator != "between" or parse_date(value[0])):
        return _compile_date(field, operator, value, today)
    if operator == "between":
        number = _AttributeNumber(field)
        return Q(GreaterThanOrEqual(number, float(value[0]))) & Q(
            LessThanOrEqual(number, float(value[1]))
        )
    comparison = GreaterThan if operator == "greater_than" else LessThan
    number = parse_number(value)
    if number is not None and field not in BUILTIN_FIELDS:
        return Q(comparison(_AttributeNumber(field), float(number)))
    return Q(comparison(text, value))


def _opted_out(state: str) -> Q:
    """Profiles whose address (trimmed, lower-case, as records keep it) has a consent record,
    of ``state`` unless it is "any": one EXISTS on the records' (email, ...) index."""
    from segments.models import ConsentRecord

    records = ConsentRecord.objects.filter(email=Lower(Trim(OuterRef("email"))))
    if state != ANY_CONSENT:
        records = records.filter(state=state)
    return Q(Exists(records))


def _compile_text(field: str, operator: str, value: Any, case_sensitive: bool) -> Q:
    text = _text(field)
    if operator == "not_equals":
        return _is_empty(field) | ~_compile_text(field, "equals", value, case_sensitive)
    if operator == "in_list":
        if case_sensitive:
            return Q(In(text, value))
        return Q(In(Lower(text), [part.lower() for part in value]))
    if not case_sensitive:
        lookup = {"equals": IExact, "contains": IContains, "starts_with": IStartsWith}.get(
            operator, IEndsWith
        )
        return Q(lookup(text, value))
    # LIKE ignores case on SQLite, so case-sensitive matching compares substrings instead.
    if operator == "equals":
        return Q(Exact(text, Value(value, TextField())))
    if operator == "contains":
        return Q(GreaterThan(StrIndex(text, Value(value, TextField())), 0))
    cut = Left if operator == "starts_with" else Right
    return Q(Exact(cut(text, len(value)), Value(value, TextField()))) & Q(
        GreaterThanOrEqual(Length(text), len(value))
    )


def _months_before(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last_day))


# Every date comparison is a range between ISO texts: text that is not a date ("unknown", "")
# falls outside it, without a pattern match on every profile (four times slower).
EARLIEST_DATE, LATEST_DATE = "0000-01-01", "9999-12-31"


def _compile_date(field: str, operator: str, value: Any, today: date) -> Q:
    day = Substr(KeyTextTransform(field, "attributes"), 1, 10)

    def within(first: date | str, last: date | str) -> Q:
        return Q(Range(day, (str(first), str(last))))

    if operator == "before":
        return within(EARLIEST_DATE, value) & ~Q(Exact(day, value))
    if operator == "after":
        return within(value, LATEST_DATE) & ~Q(Exact(day, value))
    if operator == "on":
        return Q(Exact(day, value))
    if operator == "between":
        return within(value[0], value[1])
    if operator == "in_last_days":
        return within(today - timedelta(days=value), today)
    if operator == "in_last_weeks":
        return within(today - timedelta(weeks=value), today)
    if operator == "in_last_months":
        return within(_months_before(today, value), today)
    if operator == "more_than_days_ago":
        return within(EARLIEST_DATE, today - timedelta(days=value + 1))
    return within(today, today + timedelta(days=value))


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
