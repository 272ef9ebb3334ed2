from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from connections.types.base import ConsentColumns
from core.consent import ConsentState
from segments.consent import (
    consent_records_apply,
    consent_records_apply_counted,
    consent_records_for_profile,
    normalise_email,
)
from segments.membership import inputs_fingerprint, refresh_day
from segments.models import ConsentRecord, Profile
from segments.rules import RuleError, compile_rules, validate
from segments.sentences import describe
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Event:
    """Shaped like ``connections.types.base.ConsentEvent`` (segments never import it)."""

    email: str
    state: str = ConsentState.UNSUBSCRIBED
    occurred_at: datetime | None = None
    list_id: str = "L1"
    reason: str = ""


MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def account():
    return ConnectionFactory(display_name="Newsletter")


def apply(account, *events):
    return consent_records_apply_counted(
        connection_id=account.pk, connection_name=account.display_name, events=list(events)
    )


def apply_page(account, page):
    return consent_records_apply_counted(
        connection_id=account.pk, connection_name=account.display_name, events=page
    )


def test_it_stores_addresses_trimmed_and_lower_case(account):
    applied = apply(account, Event("  Ann@Example.COM ", occurred_at=MARCH, reason="Too many"))
    record = ConsentRecord.objects.get()
    assert applied.new == 1
    assert (record.email, record.state, record.list_id, record.connection_id) == (
        "ann@example.com",
        "unsubscribed",
        "L1",
        account.pk,
    )
    assert (record.connection_name, record.occurred_at, record.reason) == (
        "Newsletter",
        MARCH,
        "Too many",
    )


def test_it_drops_and_counts_invalid_and_empty_addresses(account):
    applied = apply(
        account,
        Event(""),
        Event("   "),
        Event("not an address"),
        Event("two@@example.com"),
        Event("ok@example.com", state="resubscribed"),
        Event("good@example.com"),
    )
    assert (applied.new, applied.invalid) == (1, 5)
    assert list(ConsentRecord.objects.values_list("email", flat=True)) == ["good@example.com"]


def test_it_keeps_one_record_per_key_within_a_page_with_the_latest_date(account):
    applied = apply(
        account,
        Event("ann@example.com", occurred_at=MARCH, reason="first"),
        Event("ANN@example.com", occurred_at=APRIL, reason="latest"),
        Event("ann@example.com", occurred_at=None, reason="undated"),
        Event("ann@example.com", state=ConsentState.BOUNCED, occurred_at=MARCH),
    )
    assert applied.new == 2
    unsubscribed = ConsentRecord.objects.get(state="unsubscribed")
    assert (unsubscribed.occurred_at, unsubscribed.reason) == (APRIL, "latest")


def test_a_record_already_held_moves_only_to_a_later_date_and_is_not_new(account):
    assert (
        consent_records_apply(
            connection_id=account.pk,
            connection_name="Newsletter",
            events=[Event("ann@example.com", occurred_at=APRIL, reason="April")],
        )
        == 1
    )
    assert apply(account, Event("ann@example.com", occurred_at=MARCH, reason="March")).new == 0
    record = ConsentRecord.objects.get()
    assert (record.occurred_at, record.reason) == (APRIL, "April")
    later = datetime(2026, 5, 1, tzinfo=UTC)
    assert apply(account, Event("ann@example.com", occurred_at=later, reason="May")).new == 0
    record.refresh_from_db()
    assert (record.occurred_at, record.reason, ConsentRecord.objects.count()) == (later, "May", 1)


def test_records_of_another_list_or_connection_are_records_of_their_own(account):
    other = ConnectionFactory(display_name="Shop")
    apply(account, Event("ann@example.com"), Event("ann@example.com", list_id="L2"))
    apply(other, Event("ann@example.com"))
    assert ConsentRecord.objects.count() == 3


def test_a_reason_with_tabs_backslashes_and_line_breaks_is_stored_as_it_came(account):
    reason = "Too\tmany\\emails\nevery day"
    apply(account, Event("ann@example.com", occurred_at=MARCH, reason=reason))
    applied = apply(account, Event("bo@example.com", reason=reason))
    assert applied.new == 1
    assert set(ConsentRecord.objects.values_list("reason", flat=True)) == {reason}


def test_a_page_given_column_by_column_is_stored_as_the_same_events_would_be(account):
    emails = [" Ann@Example.COM", "b\\x@example.com", "c@example.com", "c@example.com"]
    dates = [MARCH, None, MARCH, APRIL]
    reasons = ["Too\tmany\nmails\\", "", "first", "later"]
    as_columns = apply_page(
        account, ConsentColumns(emails, ConsentState.UNSUBSCRIBED, dates, "L1", reasons)
    )
    stored = sorted(
        ConsentRecord.objects.values_list("email", "state", "list_id", "occurred_at", "reason")
    )
    ConsentRecord.objects.all().delete()
    one_by_one = apply(
        account,
        *(
            Event(email, occurred_at=date, reason=reason)
            for email, date, reason in zip(emails, dates, reasons, strict=True)
        ),
    )
    assert (as_columns.new, as_columns.invalid) == (one_by_one.new, one_by_one.invalid) == (3, 0)
    assert stored == sorted(
        ConsentRecord.objects.values_list("email", "state", "list_id", "occurred_at", "reason")
    )
    assert stored == [
        ("ann@example.com", "unsubscribed", "L1", MARCH, "Too\tmany\nmails\\"),
        ("b\\x@example.com", "unsubscribed", "L1", None, ""),
        ("c@example.com", "unsubscribed", "L1", APRIL, "later"),
    ]


def test_a_column_page_holding_an_invalid_address_is_read_event_by_event(account):
    page = ConsentColumns(["a@example.com", "not an address"], ConsentState.CLEANED, [None, MARCH])
    applied = apply_page(account, page)
    assert (applied.new, applied.invalid) == (1, 1)
    assert list(ConsentRecord.objects.values_list("email", "state", "reason")) == [
        ("a@example.com", "cleaned", "")
    ]


def test_a_profile_finds_the_records_of_its_address(account):
    profile = ProfileFactory(email=" Ann@Example.com ")
    apply(account, Event("ann@example.com", occurred_at=MARCH), Event("bo@example.com"))
    assert [r.email for r in consent_records_for_profile(profile)] == ["ann@example.com"]
    assert not consent_records_for_profile(ProfileFactory(email="")).exists()


def test_normalise_email_refuses_what_is_not_an_address():
    assert normalise_email(" A@B.CO ") == "a@b.co"
    assert normalise_email("nope") == ""
    assert normalise_email(None) == ""


# The segment condition ---------------------------------------------------------------------------


@pytest.fixture
def people(account):
    ProfileFactory(customer_id="ann", email="Ann@Example.com ")
    ProfileFactory(customer_id="bo", email="bo@example.com")
    ProfileFactory(customer_id="cy", email="cy@example.com")
    ProfileFactory(customer_id="dag", email="")
    apply(
        account,
        Event("ann@example.com"),
        Event("bo@example.com", state=ConsentState.BOUNCED),
        Event("nobody@example.com"),
    )


def matching(condition: dict) -> set[str]:
    rules = validate({"match": "all", "conditions": [condition]}, [], [])
    return set(Profile.objects.filter(compile_rules(rules)).values_list("customer_id", flat=True))


def test_the_consent_condition_selects_exactly_the_opted_out_profiles(people):
    assert matching({"consent": "any", "operator": "opted_out"}) == {"ann", "bo"}
    assert matching({"consent": "any", "operator": "not_opted_out"}) == {"cy", "dag"}
    assert matching({"consent": "bounced", "operator": "opted_out"}) == {"bo"}
    assert matching({"consent": "bounced", "operator": "not_opted_out"}) == {"ann", "cy", "dag"}


def test_the_consent_condition_combines_with_field_conditions(people):
    rules = validate(
        {
            "match": "all",
            "conditions": [
                {"consent": "any", "operator": "not_opted_out"},
                {"field": "email", "operator": "is_not_empty"},
            ],
        },
        [],
        [],
    )
    assert set(
        Profile.objects.filter(compile_rules(rules)).values_list("customer_id", flat=True)
    ) == {"cy"}


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ({"consent": "resubscribed", "operator": "opted_out"}, "Choose which opt-out"),
        ({"consent": "any", "operator": "equals"}, "has not opted out"),
        ({"field": "email", "operator": "opted_out"}, "Choose how “Email” is compared"),
    ],
)
def test_it_refuses_a_consent_condition_it_cannot_read(condition, problem):
    with pytest.raises(RuleError, match=problem):
        validate({"match": "all", "conditions": [condition]}, [], [])


def test_the_consent_condition_is_said_in_words():
    tree = validate(
        {
            "match": "any",
            "conditions": [
                {"consent": "any", "operator": "opted_out"},
                {"consent": "bounced", "operator": "not_opted_out"},
            ],
        },
        [],
        [],
    )
    sentences = [item["sentence"] for item in describe(tree, {}, {})["conditions"]]
    assert sentences == [
        "Has opted out or bounced at a connection",
        "Has no consent record: Bounced",
    ]


def test_a_new_record_changes_the_fingerprint_of_a_segment_that_reads_consent(people, account):
    reads = validate({"match": "all", "conditions": [{"consent": "any", "operator": "opted_out"}]})
    ignores = validate({"match": "all", "conditions": [{"field": "email", "operator": "is_empty"}]})
    today = refresh_day()
    before = inputs_fingerprint(reads, today), inputs_fingerprint(ignores, today)
    apply(account, Event("cy@example.com"))
    after = inputs_fingerprint(reads, today), inputs_fingerprint(ignores, today)
    assert before[0] != after[0]
    assert before[1] == after[1]


# The profile page --------------------------------------------------------------------------------


def test_the_profile_page_shows_the_consent_records_of_its_address(as_charlie, account):
    profile = ProfileFactory(customer_id="ann", email="Ann@Example.com", first_name="Ann")
    apply(
        account,
        Event("ann@example.com", occurred_at=MARCH, reason="Too many emails"),
        Event("ann@example.com", state=ConsentState.BOUNCED, list_id=""),
    )
    html = as_charlie.get(reverse("profiles:detail", args=[profile.pk])).content.decode()
    section = html[html.index('id="consent"') :]
    for text in ("Unsubscribed", "Bounced", "Newsletter", "L1", "Too many emails"):
        assert text in section, text
    assert "The whole account" in section and "Not said by the service" in section
    assert 'datetime="2026-03-01T00:00:00+00:00"' in section


def test_the_profile_page_says_when_there_is_no_consent_record(as_charlie):
    profile = ProfileFactory(email="cy@example.com")
    html = as_charlie.get(reverse("profiles:detail", args=[profile.pk])).content.decode()
    assert "No consent records" in html


def test_the_profile_list_links_each_profile_to_its_page(as_charlie):
    profile = ProfileFactory(customer_id="ann")
    html = as_charlie.get(reverse("profiles:list")).content.decode()
    assert reverse("profiles:detail", args=[profile.pk]) in html
