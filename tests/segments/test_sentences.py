"""The saved rule reads as sentences, one translatable sentence per operator, with field labels
and "and" / "or" between the conditions of a group; the builder's estimate is a share."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from segments.catalogue import field_label, refresh_field_catalogue
from segments.rules import OPERATORS, RELATIVE_OPERATORS
from segments.sentences import condition_sentence, describe
from segments.views import share_in_percent
from tests.factories import SegmentFactory

LANGUAGES = ["en", "fr", "ja", "nb", "zh-hans"]


def sample_condition(operator: str) -> dict:
    if operator in ("member_of", "not_member_of"):
        return {"segment": 7, "operator": operator}
    if operator in ("opted_out", "not_opted_out"):
        return {"consent": "bounced", "operator": operator}
    if operator == "between":
        return {"field": "orders", "operator": operator, "value": ["2", "5"]}
    if operator in RELATIVE_OPERATORS:
        return {"field": "signup_date", "operator": operator, "value": 730}
    if operator == "in_list":
        return {"field": "city", "operator": operator, "value": ["Oslo", "Paris"]}
    return {"field": "city", "operator": operator, "value": "Oslo"}


def sentence(condition: dict, field_type: str = "text") -> str:
    label = field_label(condition.get("field", ""))
    return condition_sentence(condition, label, field_type=field_type, segment_name="VIP")


@pytest.mark.parametrize(
    ("condition", "field_type", "expected"),
    [
        (sample_condition("in_last_days"), "date", "Signup date is in the last 730 days"),
        (
            {"field": "signup_date", "operator": "in_last_weeks", "value": 1},
            "date",
            "Signup date is in the last 1 week",
        ),
        (
            {"field": "signup_date", "operator": "more_than_days_ago", "value": 1000},
            "date",
            "Signup date is more than 1,000 days ago",
        ),
        (
            {"field": "email", "operator": "contains", "value": "@example.com"},
            "text",
            "Email contains “@example.com”",
        ),
        ({"field": "orders", "operator": "equals", "value": "3"}, "number", "Orders is 3"),
        (
            {"field": "orders", "operator": "greater_than", "value": "3"},
            "number",
            "Orders is greater than 3",
        ),
        (sample_condition("between"), "number", "Orders is between 2 and 5"),
        (sample_condition("in_list"), "text", "City is one of “Oslo”, “Paris”"),
        ({"field": "first_name", "operator": "is_empty"}, "text", "First name is empty"),
        ({"field": "newsletter", "operator": "is_true"}, "boolean", "Newsletter is true"),
        (sample_condition("member_of"), "text", "Is a member of “VIP”"),
        (sample_condition("not_member_of"), "text", "Is not a member of “VIP”"),
    ],
)
def test_a_condition_reads_as_a_sentence(condition, field_type, expected):
    with translation.override("en"):
        assert sentence(condition, field_type) == expected


def test_a_long_list_names_its_first_values_and_counts_the_rest():
    condition = {"field": "city", "operator": "in_list", "value": [f"c{n}" for n in range(25)]}
    with translation.override("en"):
        assert sentence(condition).endswith("“c9” and 15 more")


@pytest.mark.parametrize("language", LANGUAGES[1:])
@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_every_operator_has_its_own_sentence_in_every_language(language, operator):
    condition = sample_condition(operator)
    with translation.override("en"):
        english = sentence(condition)
    with translation.override(language):
        translated = sentence(condition)
    assert translated != english
    assert operator not in translated  # never the stored name of the operator


def test_the_sentence_is_ordered_by_the_translation():
    with translation.override("ja"):
        assert sentence(sample_condition("in_last_days"), "date") == (
            "Signup date が過去 730 日以内"
        )


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("customer_id", "Customer id"),
        ("email", "Email"),
        ("first_name", "First name"),
        ("signup_date", "Signup date"),
        ("CRM_ID", "CRM_ID"),
        ("Favourite colour", "Favourite colour"),
    ],
)
def test_a_field_is_shown_by_its_label(name, label):
    with translation.override("en"):
        assert field_label(name) == label


def test_groups_say_and_or_or_between_their_conditions():
    tree = {
        "match": "all",
        "conditions": [
            {"field": "city", "operator": "equals", "value": "Oslo"},
            {
                "match": "any",
                "conditions": [
                    {"field": "orders", "operator": "greater_than", "value": "3"},
                    {"field": "newsletter", "operator": "is_true"},
                ],
            },
        ],
    }
    with translation.override("en"):
        described = describe(tree, {}, {"orders": "number"})
    assert described["conditions"][0]["sentence"] == "City is “Oslo”"
    assert described["conditions"][1]["conditions"][0]["sentence"] == "Orders is greater than 3"


@pytest.mark.django_db
def test_the_segment_page_shows_the_rules_as_sentences_with_and_or(as_charlie):
    refresh_field_catalogue({"signup_date": "date", "city": "text"})
    segment = SegmentFactory(
        rules={
            "match": "any",
            "conditions": [
                {"field": "signup_date", "operator": "in_last_days", "value": 730},
                {"field": "city", "operator": "equals", "value": "Oslo"},
            ],
        }
    )
    html = as_charlie.get(reverse("segments:detail", args=[segment.pk])).content.decode()
    assert '<span class="rule-sentence">Signup date is in the last 730 days</span>' in html
    assert '<span class="rule-connector">or</span> <span class="rule-sentence">City is' in html
    with translation.override("en"):  # put back after the request's Norwegian
        norwegian = as_charlie.get(
            reverse("segments:detail", args=[segment.pk]), HTTP_ACCEPT_LANGUAGE="nb"
        ).content.decode()
    assert "Signup date er innenfor de siste 730 dagene" in norwegian


@pytest.mark.parametrize(
    ("part", "total", "shown"),
    [
        (26, 10_008, "0.3"),
        (0, 10, "0"),
        (1, 100_000, "<0.1"),
        (5, 5, "100"),
        (1, 8, "12.5"),
        (3, 0, "0"),
    ],
)
def test_the_estimate_is_a_share_of_every_profile(part, total, shown):
    with translation.override("en"):
        assert share_in_percent(part, total) == shown
