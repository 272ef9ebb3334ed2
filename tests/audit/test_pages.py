"""Admin > Audit log: filters, keyset pages, CSV download, and links from object pages."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

import audit
from audit.models import AuditEntry
from tests.connections.factories import ConnectionFactory
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db


def _csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_the_page_shows_who_did_what_with_the_changes(as_alice, alice):
    audit.record(
        "segment.updated",
        object_type="segment",
        object_id=7,
        object_label="VIP",
        before={"name": "Big spenders"},
        after={"name": "VIP"},
        actor=alice,
    )
    audit.record("run.started", object_type="export", object_id=3, actor_label=audit.SCHEDULE)
    html = as_alice.get(reverse("audit:list")).content.decode()
    assert "Segment changed" in html and "Segment: VIP" in html
    assert "<del>Big spenders</del> → VIP" in html
    assert "The schedule" in html and "Run started" in html


def test_filters_by_who_object_action_and_date(as_alice, alice, bob):
    audit.record("segment.created", object_type="segment", object_id=1, actor=alice)
    audit.record("segment.created", object_type="segment", object_id=2, actor=bob)
    audit.record("export.created", object_type="export", object_id=1, actor=bob)
    url = reverse("audit:list")

    def shown(**query):
        response = as_alice.get(url, query)
        return [(e.action, e.object_id, e.actor_label) for e in response.context["entries"]]

    assert shown(who="bob") == [("export.created", "1", "bob"), ("segment.created", "2", "bob")]
    assert shown(object_type="segment", object_id="2") == [("segment.created", "2", "bob")]
    assert shown(action="export.created") == [("export.created", "1", "bob")]
    today = AuditEntry.objects.first().at.date().isoformat()
    assert len(shown(date_from=today, date_to=today, object_type="segment")) == 2
    assert shown(date_from="2001-01-01", date_to="2001-01-02") == []


def test_a_date_range_that_ends_before_it_starts_says_so(as_alice):
    response = as_alice.get(
        reverse("audit:list"), {"date_from": "2026-05-02", "date_to": "2026-05-01"}
    )
    assert b"The end date is before the start date." in response.content


def test_pages_follow_a_keyset_cursor(as_alice, settings, monkeypatch):
    monkeypatch.setattr("audit.selectors.PAGE_SIZE", 2)
    for number in range(5):
        audit.record("segment.created", object_type="segment", object_id=number)
    seen = []
    url, query = reverse("audit:list"), {"object_type": "segment"}
    while True:
        response = as_alice.get(url, query)
        seen += [entry.object_id for entry in response.context["entries"]]
        if response.context["next_before"] is None:
            break
        assert "object_type=segment&amp;before=" in response.content.decode()
        query = {"object_type": "segment", "before": response.context["next_before"]}
    assert seen == ["4", "3", "2", "1", "0"]


def test_the_csv_has_every_matching_entry_with_formulas_neutralised(as_alice, alice):
    audit.record(
        "segment.created", object_type="segment", object_id=1, object_label="=HYPERLINK(1)"
    )
    audit.record("export.created", object_type="export", object_id=1, object_label="@SUM(A1)")
    rows = _csv(as_alice.get(reverse("audit:csv"), {"object_type": "segment"}))
    assert rows[0] == [
        "at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "object",
        "before",
        "after",
        "remote_address",
    ]
    assert len(rows) == 2
    assert rows[1][2] == "segment.created" and rows[1][5] == "'=HYPERLINK(1)"
    everything = _csv(as_alice.get(reverse("audit:csv")))
    assert "'@SUM(A1)" in [row[5] for row in everything]


@pytest.mark.parametrize("kind", ["segment", "connection", "export", "user"])
def test_object_pages_link_to_their_own_history(as_alice, alice, kind, make_export, everyone):
    if kind == "segment":
        obj = SegmentFactory()
        url = reverse("segments:detail", args=[obj.pk])
    elif kind == "connection":
        obj = ConnectionFactory()
        url = reverse("connections:edit", args=[obj.pk])
    elif kind == "export":
        obj = make_export(everyone)
        url = reverse("exports:detail", args=[obj.pk])
    else:
        obj = alice
        url = reverse("users:edit", args=[obj.pk])
    html = as_alice.get(url).content.decode()
    assert f"{reverse('audit:list')}?object_type={kind}&amp;object_id={obj.pk}" in html


def test_contributors_see_no_history_link(as_bob, make_export, everyone):
    export = make_export(everyone)
    assert (
        b"History of changes" not in as_bob.get(reverse("exports:detail", args=[export.pk])).content
    )


def test_only_administrators_find_the_audit_log_in_the_menu(client, alice, bob):
    client.force_login(alice)
    assert reverse("audit:list") in client.get(reverse("segments:list")).content.decode()
    client.force_login(bob)
    assert reverse("audit:list") not in client.get(reverse("segments:list")).content.decode()


def test_changes_are_shown_as_text_and_blank_fields_of_a_new_object_are_left_out(alice):
    entry = audit.record(
        "segment.created",
        object_type="segment",
        after={"name": "VIP", "description": "", "rules": {"match": "all"}, "count": 0},
    )
    assert entry.changes() == [
        ("count", None, "0"),
        ("name", None, "VIP"),
        ("rules", None, '{"match": "all"}'),
    ]


def test_computed_state_and_timestamps_are_not_recorded(alice):
    segment = SegmentFactory(member_count=12)
    values = audit.snapshot(segment)
    assert "member_count" not in values and "created_at" not in values
    assert "rules" in values and "name" in values


def test_changes_read_with_field_labels_and_the_names_of_related_objects(
    as_alice, alice, make_export, everyone
):
    export = make_export(everyone)
    other = ConnectionFactory(display_name="Spare account")
    audit.record(
        "export.updated",
        export,
        before={"connection_id": export.connection_id, "display_name": "Old name"},
        after={"connection_id": other.pk, "display_name": export.display_name},
        actor=alice,
    )
    html = as_alice.get(reverse("audit:list")).content.decode()
    assert f"Connection: <del>{export.connection.display_name}</del> → Spare account" in html
    assert "Display name: <del>Old name</del>" in html
    assert "connection_id" not in html


def test_a_save_that_changed_nothing_leaves_no_entry_but_an_event_does(alice):
    snapshot = {"display_name": "Same"}
    assert audit.record("segment.updated", before=snapshot, after=dict(snapshot)) is None
    replaced = audit.record(
        "connection.credentials_replaced", before=snapshot, after=dict(snapshot)
    )
    assert not AuditEntry.objects.filter(action="segment.updated").exists()
    assert AuditEntry.objects.filter(pk=replaced.pk).exists()
