"""A saved rule in words: one sentence per condition ("Signup date is in the last 730 days").

Each operator has its own whole sentence to translate, with the field, the value and the count
as placeholders, so every language orders the words its own way (no sentence is put together
from an operator's label and a value). Quotation marks are part of the translation too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from segments.catalogue import field_label
from segments.rules import ANY_CONSENT, COMBINATIONS, CONSENT_CHOICES, RELATIVE_OPERATORS

#: How many of an "is one of" condition's values its sentence names.
SHOWN_LIST_VALUES = 10

#: Operators whose value is a number or a date: written as it is, not in quotation marks.
_PLAIN_VALUE_OPERATORS = {"greater_than", "less_than", "between", "before", "after", "on"}


def _sentences() -> dict[str, str]:
    """The sentence of each operator but the relative dates' and "is between", translated."""
    return {
        "equals": _("%(field)s is %(value)s"),
        "not_equals": _("%(field)s is not %(value)s"),
        "contains": _("%(field)s contains %(value)s"),
        "starts_with": _("%(field)s starts with %(value)s"),
        "ends_with": _("%(field)s ends with %(value)s"),
        "in_list": _("%(field)s is one of %(value)s"),
        "is_empty": _("%(field)s is empty"),
        "is_not_empty": _("%(field)s has a value"),
        "greater_than": _("%(field)s is greater than %(value)s"),
        "less_than": _("%(field)s is less than %(value)s"),
        "before": _("%(field)s is before %(value)s"),
        "after": _("%(field)s is after %(value)s"),
        "on": _("%(field)s is on %(value)s"),
        "is_true": _("%(field)s is true"),
        "is_false": _("%(field)s is false"),
        "member_of": _("Is a member of %(value)s"),
        "not_member_of": _("Is not a member of %(value)s"),
    }


def consent_sentence(condition: Mapping[str, Any]) -> str:
    """A consent condition as a sentence in the current language."""
    state = condition["consent"]
    if state == ANY_CONSENT:
        if condition["operator"] == "opted_out":
            return _("Has opted out or bounced at a connection")
        return _("Has not opted out or bounced at any connection")
    label = str(CONSENT_CHOICES.get(state, state))
    if condition["operator"] == "opted_out":
        return _("Has a consent record: %(state)s") % {"state": label}
    return _("Has no consent record: %(state)s") % {"state": label}


def _counted(operator: str, count: int) -> str:
    """The sentence of a relative date operator, for ``count`` days, weeks or months."""
    if operator == "in_last_days":
        return ngettext(
            "%(field)s is in the last %(count)s day",
            "%(field)s is in the last %(count)s days",
            count,
        )
    if operator == "in_last_weeks":
        return ngettext(
            "%(field)s is in the last %(count)s week",
            "%(field)s is in the last %(count)s weeks",
            count,
        )
    if operator == "in_last_months":
        return ngettext(
            "%(field)s is in the last %(count)s month",
            "%(field)s is in the last %(count)s months",
            count,
        )
    if operator == "more_than_days_ago":
        return ngettext(
            "%(field)s is more than %(count)s day ago",
            "%(field)s is more than %(count)s days ago",
            count,
        )
    if operator == "in_next_days":
        return ngettext(
            "%(field)s is in the next %(count)s day",
            "%(field)s is in the next %(count)s days",
            count,
        )
    raise ValueError(operator)


def quoted(text: str) -> str:
    """``text`` in the reader's quotation marks."""
    return _("“%(text)s”") % {"text": text}


def condition_sentence(
    condition: Mapping[str, Any],
    field_label: str,
    *,
    field_type: str = "text",
    segment_name: str = "",
) -> str:
    """One validated condition as a sentence in the current language."""
    if "consent" in condition:
        return consent_sentence(condition)
    operator = condition["operator"]
    value = condition.get("value", "")
    if operator in RELATIVE_OPERATORS:
        count = int(value)
        return _counted(operator, count) % {
            "field": field_label,
            "count": number_format(count, force_grouping=True),
        }
    if operator == "between":
        low, high = value
        return _("%(field)s is between %(low)s and %(high)s") % {
            "field": field_label,
            "low": low,
            "high": high,
        }
    template = _sentences().get(operator)
    if template is None:  # an operator this version does not know: say it as it is stored
        return f"{field_label} {operator} {value}".strip()
    if "segment" in condition:
        shown = quoted(segment_name)
    elif operator == "in_list":
        shown = _listed(value)
    elif operator in _PLAIN_VALUE_OPERATORS or field_type != "text":
        shown = str(value)
    else:
        shown = quoted(str(value))
    return template % {"field": field_label, "value": shown}


def _listed(values: list) -> str:
    shown = ", ".join(quoted(str(value)) for value in values[:SHOWN_LIST_VALUES])
    more = len(values) - SHOWN_LIST_VALUES
    if more <= 0:
        return shown
    return ngettext("%(values)s and %(count)s more", "%(values)s and %(count)s more", more) % {
        "values": shown,
        "count": number_format(more, force_grouping=True),
    }


def describe(
    tree: dict,
    segment_names: Mapping[int, str],
    field_types: Mapping[str, str],
) -> dict:
    """A validated tree for the segment's page: each condition with its ``sentence``, each
    group with its ``match`` (the page puts "and" or "or" between its items)."""
    if "combine" in tree:
        return {
            "combine": tree["combine"],
            "combine_label": COMBINATIONS.get(tree["combine"], tree["combine"]),
            "segment_names": [segment_names.get(pk, f"#{pk}") for pk in tree["segments"]],
        }
    items = []
    for item in tree["conditions"]:
        if "conditions" in item:
            items.append(describe(item, segment_names, field_types))
            continue
        if "consent" in item:
            sentence = consent_sentence(item)
        elif "segment" in item:
            sentence = condition_sentence(
                item, "", segment_name=segment_names.get(item["segment"], f"#{item['segment']}")
            )
        else:
            sentence = condition_sentence(
                item, field_label(item["field"]), field_type=field_types.get(item["field"], "text")
            )
        items.append({**item, "sentence": sentence})
    return {"match": tree.get("match", "all"), "conditions": items}
