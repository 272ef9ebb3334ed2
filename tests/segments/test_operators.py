"""Every operator of every field type, against whichever database the suite runs on.

Run them on SQLite too: ``make test-segments-sqlite``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from exports.models import RefreshSchedule
from segments.models import Profile, ProfileField
from segments.rules import RuleError, compile_rules, validate
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db

TYPES = {
    "city": "text",
    "orders": "number",
    "signed_up": "date",
    "last_seen": "datetime",
    "vip": "boolean",
}
TODAY = date(2026, 3, 10)


@pytest.fixture
def people():
    ProfileFactory(
        customer_id="ann",
        email="Ann@Example.com",
        attributes={
            "city": "Oslo",
            "orders": 12,
            "signed_up": "2026-03-10",
            "last_seen": "2026-03-09T23:30:00+01:00",
            "vip": "true",
        },
    )
    ProfileFactory(
        customer_id="bo",
        email="bo@example.org",
        attributes={
            "city": "oslo fjord",
            "orders": 3.5,
            "signed_up": "2026-02-01",
            "last_seen": "2025-12-31 08:00",
            "vip": "FALSE",
        },
    )
    ProfileFactory(
        customer_id="cy",
        email="cy@test.no",
        attributes={
            "city": "Bergen",
            "orders": "none",
            "signed_up": "unknown",
            "last_seen": "2026-03-15T10:00:00Z",
            "vip": "",
        },
    )
    ProfileFactory(customer_id="dag", email="", attributes={"signed_up": "2025-03-10"})
    for name, data_type in TYPES.items():
        ProfileField.objects.update_or_create(name=name, defaults={"data_type": data_type})


def matching(condition: dict, today: date = TODAY) -> set[str]:
    rules = validate({"match": "all", "conditions": [condition]}, TYPES, [])
    query = compile_rules(rules, today=today)
    return set(Profile.objects.filter(query).values_list("customer_id", flat=True))


def one(field, operator, value=None, **extra):
    condition = {"field": field, "operator": operator, **extra}
    if value is not None:
        condition["value"] = value
    return condition


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # text: case-insensitive by default
        (one("city", "equals", "OSLO"), {"ann"}),
        (one("city", "equals", "OSLO", case_sensitive=True), set()),
        (one("city", "equals", "Oslo", case_sensitive=True), {"ann"}),
        (one("city", "contains", "SLO"), {"ann", "bo"}),
        (one("city", "contains", "slo", case_sensitive=True), {"ann", "bo"}),
        (one("city", "contains", "SLO", case_sensitive=True), set()),
        (one("city", "starts_with", "OSLO"), {"ann", "bo"}),
        (one("city", "starts_with", "oslo", case_sensitive=True), {"bo"}),
        (one("city", "ends_with", "FJORD"), {"bo"}),
        (one("city", "ends_with", "gen", case_sensitive=True), {"cy"}),
        (one("email", "ends_with", ".COM"), {"ann"}),
        (one("city", "not_equals", "oslo"), {"bo", "cy", "dag"}),
        (one("city", "in_list", "bergen\nOSLO\n"), {"ann", "cy"}),
        (one("city", "in_list", ["Bergen", "OSLO"], case_sensitive=True), {"cy"}),
        (one("city", "is_empty"), {"dag"}),
        (one("city", "is_not_empty"), {"ann", "bo", "cy"}),
        # number: only JSON numbers compare
        (one("orders", "between", ["3", "12"]), {"ann", "bo"}),
        (one("orders", "between", ["4", "100"]), {"ann"}),
        (one("orders", "greater_than", "3.5"), {"ann"}),
        (one("orders", "less_than", "100"), {"ann", "bo"}),
        (one("orders", "equals", "12"), {"ann"}),
        (one("orders", "is_empty"), {"dag"}),
        # date
        (one("signed_up", "before", "2026-03-10"), {"bo", "dag"}),
        (one("signed_up", "after", "2026-02-01"), {"ann"}),
        (one("signed_up", "on", "2026-02-01"), {"bo"}),
        (one("signed_up", "between", ["2026-03-10", "2026-01-01"]), {"ann", "bo"}),
        (one("signed_up", "in_last_days", 7), {"ann"}),
        (one("signed_up", "in_last_days", 37), {"ann", "bo"}),
        (one("signed_up", "in_last_weeks", 6), {"ann", "bo"}),
        (one("signed_up", "in_last_months", 1), {"ann"}),
        (one("signed_up", "in_last_months", 12), {"ann", "bo", "dag"}),
        (one("signed_up", "more_than_days_ago", 30), {"bo", "dag"}),
        (one("signed_up", "more_than_days_ago", 365), set()),
        (one("signed_up", "in_next_days", 1), {"ann"}),
        (one("signed_up", "is_empty"), set()),
        (one("signed_up", "is_not_empty"), {"ann", "bo", "cy", "dag"}),
        # date-time: the calendar day it is written with
        (one("last_seen", "on", "2026-03-09"), {"ann"}),
        (one("last_seen", "in_next_days", 5), {"cy"}),
        (one("last_seen", "in_last_days", 1), {"ann"}),
        (one("last_seen", "before", "2026-01-01"), {"bo"}),
        (one("last_seen", "is_empty"), {"dag"}),
        # boolean
        (one("vip", "is_true"), {"ann"}),
        (one("vip", "is_false"), {"bo"}),
        (one("vip", "is_empty"), {"cy", "dag"}),
    ],
)
def test_each_operator_of_each_type_selects_the_right_profiles(people, condition, expected):
    assert matching(condition) == expected


def test_json_booleans_count_as_true_and_false(people):
    ProfileFactory(customer_id="eve", attributes={"vip": True})
    ProfileFactory(customer_id="fay", attributes={"vip": False})
    assert (matching(one("vip", "is_true")), matching(one("vip", "is_false"))) == (
        {"ann", "eve"},
        {"bo", "fay"},
    )


def test_a_list_of_ten_thousand_values_is_accepted_and_one_more_is_refused(people):
    values = [f"city {n}" for n in range(9_999)] + ["Bergen"]
    assert matching(one("city", "in_list", "\n".join(values))) == {"cy"}
    with pytest.raises(RuleError, match="at most 10,000 values"):
        validate(
            {"match": "all", "conditions": [one("city", "in_list", [*values, "x"])]}, TYPES, []
        )


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (one("city", "in_last_days", 3), "“City” holds text values"),
        (one("vip", "contains", "t"), "does not apply"),
        (one("orders", "before", "2026-01-01"), "does not apply"),
        (one("signed_up", "in_last_days", "0"), "whole number of at least 1"),
        (one("signed_up", "in_last_days", "2.5"), "whole number of at least 1"),
        (one("signed_up", "before", "last year"), "Give a date such as"),
        (one("signed_up", "between", ["2026-01-01"]), "both ends of the range"),
        (one("orders", "between", ["1", "x"]), "both ends of the range"),
    ],
)
def test_operators_that_do_not_fit_the_field_are_refused_with_a_reason(condition, message):
    with pytest.raises(RuleError, match=message):
        validate({"match": "all", "conditions": [condition]}, TYPES, [])


@pytest.mark.parametrize(
    ("zone", "before_midnight", "after_midnight"),
    [
        # 23:59 and 00:01 local time on the night from 9 to 10 March
        (
            "Asia/Tokyo",
            datetime(2026, 3, 9, 14, 59, tzinfo=UTC),
            datetime(2026, 3, 9, 15, 1, tzinfo=UTC),
        ),
        (
            "Europe/Oslo",
            datetime(2026, 3, 9, 22, 59, tzinfo=UTC),
            datetime(2026, 3, 9, 23, 1, tzinfo=UTC),
        ),
    ],
)
def test_relative_dates_count_days_in_the_schedule_time_zone(zone, before_midnight, after_midnight):
    schedule = RefreshSchedule.load()
    schedule.time_zone = zone
    schedule.save()
    ProfileField.objects.create(name="signed_up", data_type="date")
    ProfileFactory(customer_id="old", attributes={"signed_up": "2026-03-02"})
    ProfileFactory(customer_id="today", attributes={"signed_up": "2026-03-10"})
    segment = SegmentFactory(
        rules={
            "match": "all",
            "conditions": [{"field": "signed_up", "operator": "in_last_days", "value": 7}],
        }
    )
    # On 9 March the last 7 days reach back to 2 March; on 10 March only to the 3rd.
    assert segment_refresh(segment_id=segment.pk, now=before_midnight).member_count == 1
    refreshed = segment_refresh(segment_id=segment.pk, now=after_midnight)
    members = set(refreshed.members.values_list("profile__customer_id", flat=True))
    assert members == {"today"}


def test_types_are_inferred_on_import_and_their_operators_work_on_the_imported_values():
    import io

    from segments.importing import import_csv

    csv_text = (
        "customer_id,email,signed_up,seen,vip,city\n"
        "a,a@example.com,2026-03-01,2026-03-01T10:00:00Z,true,Oslo\n"
        "b,b@example.com,2025-01-01,2026-02-01,False,Bergen\n"
    )
    import_csv(io.BytesIO(csv_text.encode()))
    types = dict(ProfileField.objects.values_list("name", "data_type"))
    assert {name: types[name] for name in ("signed_up", "seen", "vip", "city")} == {
        "signed_up": "date",
        "seen": "datetime",
        "vip": "boolean",
        "city": "text",
    }
    rules = validate(
        {
            "match": "all",
            "conditions": [
                {"field": "vip", "operator": "is_true"},
                {"field": "signed_up", "operator": "in_last_months", "value": 1},
            ],
        }
    )
    found = Profile.objects.filter(compile_rules(rules, today=date(2026, 3, 2)))
    assert list(found.values_list("customer_id", flat=True)) == ["a"]
