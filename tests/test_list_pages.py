"""Every list sorts by its columns and searches, from the address (issue 23, item 10):
Connections, Segments, Exports, Profiles, Users and the Audit log."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

import audit
from accounts.roles import Role
from accounts.services import user_create_or_update
from core.listing import MAX_QUERY_LENGTH
from exports.models import Export, ExportRun
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def names(response, key: str, attribute: str) -> list[str]:
    return [str(getattr(row, attribute)) for row in response.context[key]]


def test_connections_are_found_by_name_or_type_and_sorted_by_a_column(as_alice):
    ConnectionFactory(display_name="Nordic newsletters")
    ConnectionFactory(display_name="Offers", campaign_monitor=True)
    ConnectionFactory(display_name="Nordic offers", campaign_monitor=True)
    url = reverse("connections:list")

    found = as_alice.get(url, {"q": "campaign nordic"})
    assert names(found, "connections", "display_name") == ["Nordic offers"]
    by_type = as_alice.get(url, {"sort": "-type"})
    assert names(by_type, "connections", "display_name") == [
        "Offers",
        "Nordic offers",
        "Nordic newsletters",
    ]
    assert 'aria-sort="descending"' in by_type.content.decode()
    nothing = as_alice.get(url, {"q": "mailchimp"}).content.decode()
    assert "Nothing matches “mailchimp”." in nothing


def test_segments_are_found_and_sorted_and_the_live_table_keeps_both(as_bob):
    SegmentFactory(name="Gold buyers", member_count=10)
    SegmentFactory(name="Silver buyers", member_count=300)
    SegmentFactory(name="Lapsed", description="Buyers who stopped", member_count=20)
    SegmentFactory(name="Newsletter", member_count=5000)
    url = reverse("segments:list")

    response = as_bob.get(url, {"q": "buyers", "sort": "-members"})
    assert names(response, "segments", "name") == ["Silver buyers", "Lapsed", "Gold buyers"]
    assert 'hx-get="/segments/?q=buyers&amp;sort=-members"' not in response.content.decode()
    with_refresh = SegmentFactory(name="Refreshing buyers", refresh_state="queued")
    page = as_bob.get(url, {"q": "buyers", "sort": "-members"}).content.decode()
    assert with_refresh.is_refreshing
    assert 'hx-get="/segments/?q=buyers&amp;sort=-members"' in page


def test_exports_sort_by_their_last_run_with_those_never_run_last(as_alice, alice):
    connection = ConnectionFactory()
    exports = {}
    for name in ("Weekly", "Daily", "Never run"):
        exports[name] = Export.objects.create(
            display_name=name, connection=connection, list_id="l", created_by=alice
        )
    now = timezone.now()
    for name, at in (("Weekly", now - dt.timedelta(days=7)), ("Daily", now)):
        ExportRun.objects.create(
            export=exports[name],
            status=ExportRun.Status.SUCCEEDED,
            trigger=ExportRun.Trigger.USER,
            started_at=at,
            finished_at=at,
        )
    url = reverse("exports:list")
    newest = as_alice.get(url, {"sort": "-last_run"})
    assert names(newest, "exports", "display_name") == ["Daily", "Weekly", "Never run"]
    oldest = as_alice.get(url, {"sort": "last_run"})
    assert names(oldest, "exports", "display_name") == ["Weekly", "Daily", "Never run"]
    assert names(as_alice.get(url, {"q": "ly"}), "exports", "display_name") == ["Daily", "Weekly"]


def test_profiles_sort_by_a_column_and_the_page_links_keep_the_sort_and_search(
    as_charlie, monkeypatch
):
    monkeypatch.setattr("segments.profile_views.PAGE_SIZE", 2)
    for letter in "abcde":
        ProfileFactory(customer_id=f"id-{letter}", email=f"{letter}@gold.example")
    ProfileFactory(customer_id="id-z", email="z@silver.example")
    url = reverse("profiles:list")

    first = as_charlie.get(url, {"q": "gold", "sort": "-email"})
    assert [p.email for p in first.context["page"]] == ["e@gold.example", "d@gold.example"]
    assert 'href="?q=gold&amp;sort=-email&amp;page=2"' in first.content.decode()
    second = as_charlie.get(url, {"q": "gold", "sort": "-email", "page": 2})
    assert [p.email for p in second.context["page"]] == ["c@gold.example", "b@gold.example"]
    assert 'href="?q=gold&amp;sort=-email&amp;page=1"' in second.content.decode()


def test_a_search_is_cut_to_its_bound_and_an_unknown_sort_keeps_the_default(as_charlie):
    ProfileFactory(customer_id="id-b", email="b@example.com")
    ProfileFactory(customer_id="id-a", email="a@example.com")
    response = as_charlie.get(
        reverse("profiles:list"), {"q": "example " + "x" * 1000, "sort": "attributes"}
    )
    assert len(response.context["query"]) == MAX_QUERY_LENGTH
    assert response.context["sort"] == "customer_id"
    search = as_charlie.get(reverse("profiles:list"), {"sort": "attributes"})
    assert [p.customer_id for p in search.context["page"]] == ["id-a", "id-b"]
    assert 'maxlength="100"' in search.content.decode()


def test_users_are_found_by_email_and_sorted_by_their_last_login(as_alice, alice):
    dana = user_create_or_update(username="dana", role=Role.VIEWER, email="dana@shop.example")[0]
    erik = user_create_or_update(username="erik", role=Role.VIEWER, email="erik@shop.example")[0]
    User.objects.filter(pk=dana.pk).update(last_login=timezone.now() - dt.timedelta(days=3))
    User.objects.filter(pk=erik.pk).update(last_login=timezone.now())
    url = reverse("users:list")

    shop = as_alice.get(url, {"q": "shop.example", "sort": "-last_login"})
    assert [user.username for user, _role in shop.context["users"]] == ["erik", "dana"]
    everyone = as_alice.get(url, {"sort": "last_login"})  # alice logged in before erik
    assert [user.username for user, _role in everyone.context["users"]] == [
        "dana",
        "alice",
        "erik",
    ]


def test_the_audit_log_sorts_by_who_and_pages_through_every_entry_once(as_alice, monkeypatch):
    monkeypatch.setattr("audit.selectors.PAGE_SIZE", 2)
    for number, who in enumerate(["erik", "dana", "erik", "bea", "dana"]):
        audit.record("segment.created", object_type="segment", object_id=number, actor_label=who)
    url, query, seen = reverse("audit:list"), {"object_type": "segment", "sort": "who"}, []
    while True:
        response = as_alice.get(url, query)
        seen += [(entry.actor_label, entry.object_id) for entry in response.context["entries"]]
        if response.context["next_before"] is None:
            break
        assert "sort=who&amp;before=" in response.content.decode()
        query = {**query, "before": response.context["next_before"]}
    assert seen == [("bea", "3"), ("dana", "1"), ("dana", "4"), ("erik", "0"), ("erik", "2")]


def test_the_audit_log_searches_who_and_what_and_keeps_the_order_when_filtering(as_alice):
    audit.record("segment.created", object_type="segment", object_id=1, object_label="Gold")
    audit.record("segment.created", object_type="segment", object_id=2, object_label="Silver")
    response = as_alice.get(reverse("audit:list"), {"q": "gold", "sort": "when"})
    assert [entry.object_label for entry in response.context["entries"]] == ["Gold"]
    assert '<input type="hidden" name="sort" value="when">' in response.content.decode()
    too_long = as_alice.get(reverse("audit:list"), {"q": "x" * (MAX_QUERY_LENGTH + 1)})
    assert "at most 100 characters" in too_long.content.decode()
