"""Admin > Exclusions: the pages by role, pasting addresses and domains, a segment, notes and
removal, each in the audit log (issue 24)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from core.consent import ConsentState
from exports import exclusions
from exports.models import ConsentRule, Exclusion
from segments.models import ConsentRecord
from segments.services import SegmentInUse, segment_delete
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db
LIST = "/exclusions/"
CONSENT_RULE = "/exclusions/consent-rule/"


def paste(client, kind, lines, note=""):
    return client.post(
        reverse("exclusions:add", args=[kind]), {f"{kind}-lines": lines, f"{kind}-note": note}
    )


def test_administrators_find_exclusions_in_the_admin_menu(as_alice):
    response = as_alice.get("/segments/")
    assert 'href="/exclusions/"' in response.content.decode()
    page = as_alice.get(LIST)
    assert page.status_code == 200
    assert "Nothing is excluded" in page.content.decode()


@pytest.mark.parametrize("client_fixture", ["as_bob", "as_charlie"])
def test_other_roles_are_told_why_they_cannot_open_it(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    assert 'href="/exclusions/"' not in client.get("/segments/").content.decode()
    for response in (client.get(LIST), paste(client, "address", "a@example.org")):
        assert response.status_code == 403
        assert "Only administrators can see and change exclusions" in response.content.decode()
    assert not Exclusion.objects.exists()


def test_pasted_addresses_are_normalised_and_repeats_folded(as_alice):
    Exclusion.objects.create(kind="address", value="old@example.org")
    response = paste(
        as_alice,
        "address",
        " Ann@Example.org \n\nann@example.org\nOLD@example.org\nbob@example.org\n",
        note="Asked by legal",
    )
    assert response.status_code == 302
    assert sorted(Exclusion.objects.values_list("value", "note")) == [
        ("ann@example.org", "Asked by legal"),
        ("bob@example.org", "Asked by legal"),
        ("old@example.org", ""),
    ]
    shown = as_alice.get(LIST).content.decode()
    assert "2 addresses excluded from every export." in shown
    assert "3 addresses, 0 domains and 0 segments excluded." in shown
    assert "1 was excluded already." in shown
    assert "1 repeated line was counted once." in shown
    (entry,) = AuditEntry.objects.filter(action="exclusion.added")
    assert entry.after["values"] == ["ann@example.org", "bob@example.org"]


def test_invalid_lines_are_named_by_number_and_nothing_is_added(as_alice):
    response = paste(as_alice, "address", "a@example.org\nnot an address\n\nb@\nc@example.org")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Line 2: “not an address” is not an email address." in page
    assert "Line 4: “b@” is not an email address." in page
    assert "c@example.org" in page  # the paste is kept in the box to be corrected
    assert not Exclusion.objects.exists()


def test_too_many_lines_are_refused(as_alice, monkeypatch):
    monkeypatch.setattr("exports.exclusion_forms.MAX_PASTED_LINES", 3)
    response = paste(as_alice, "address", "\n".join(f"p{n}@example.org" for n in range(4)))
    assert response.status_code == 200
    assert "At most 3 lines at a time; this has 4." in response.content.decode()
    assert not Exclusion.objects.exists()


def test_the_total_is_bounded(as_alice, monkeypatch):
    monkeypatch.setattr(exclusions, "MAX_EXCLUSIONS", 2)
    response = paste(as_alice, "domain", "a.example\nb.example\nc.example")
    assert response.status_code == 200
    assert "at most 2 excluded addresses and domains" in response.content.decode()
    assert not Exclusion.objects.exists()


def test_domains_are_read_without_an_at_sign_and_say_how_they_match(as_alice):
    page = as_alice.get(LIST).content.decode()
    assert "example.org does not exclude mail.example.org" in page
    response = paste(as_alice, "domain", "@Example.ORG\nmail.example.org.\nlocalhost")
    assert response.status_code == 200
    assert "Line 3: “localhost” is not a domain" in response.content.decode()
    paste(as_alice, "domain", "@Example.ORG\nmail.example.org.")
    assert sorted(Exclusion.objects.values_list("value", flat=True)) == [
        "example.org",
        "mail.example.org",
    ]


def test_a_segment_is_excluded_and_then_cannot_be_removed(as_alice):
    segment = SegmentFactory(name="Staff")
    response = as_alice.post(
        reverse("exclusions:add", args=["segment"]), {"segment-segment": segment.pk}
    )
    assert response.status_code == 302
    assert Exclusion.objects.get().segment == segment
    with pytest.raises(SegmentInUse, match="Exclusion of segment “Staff”"):
        segment_delete(segment=segment)
    # Already excluded: no longer offered.
    assert f'value="{segment.pk}"' not in as_alice.get(LIST).content.decode()


def test_the_note_is_edited_and_an_exclusion_removed(as_alice):
    exclusion = Exclusion.objects.create(kind="address", value="a@example.org")
    response = as_alice.post(reverse("exclusions:edit", args=[exclusion.pk]), {"note": "VIP"})
    assert response.status_code == 302
    exclusion.refresh_from_db()
    assert exclusion.note == "VIP"
    assert as_alice.get(reverse("exclusions:delete", args=[exclusion.pk])).status_code == 200
    assert as_alice.post(reverse("exclusions:delete", args=[exclusion.pk])).status_code == 302
    assert not Exclusion.objects.exists()
    assert set(
        AuditEntry.objects.filter(object_type="exclusion").values_list("action", flat=True)
    ) == {"exclusion.updated", "exclusion.removed"}


def test_the_list_filters_by_kind_and_search(as_alice):
    Exclusion.objects.create(kind="address", value="ann@example.org")
    Exclusion.objects.create(kind="domain", value="example.net")
    page = as_alice.get(LIST, {"kind": "domain"}).content.decode()
    assert "example.net" in page and "ann@example.org" not in page
    page = as_alice.get(LIST, {"q": "ann"}).content.decode()
    assert "ann@example.org" in page and "example.net</td>" not in page


def test_the_run_page_shows_the_excluded_count(as_alice, alice):
    from exports.models import Export, ExportRun
    from tests.connections.factories import ConnectionFactory

    export = Export.objects.create(
        display_name="News", connection=ConnectionFactory(), list_id="l1"
    )
    run = ExportRun.objects.create(
        export=export, trigger="user", status="succeeded", profiles_total=5, excluded=2, added=3
    )
    page = as_alice.get(reverse("exports:run_detail", args=[run.pk])).content.decode()
    assert '<dd class="count-excluded">2</dd>' in page
    assert "2 profiles were excluded (Admin > Exclusions)." in page


def test_the_page_shows_the_consent_rule_and_the_addresses_records_exclude(as_alice):
    ConsentRecord.objects.create(email="a@example.org", state=ConsentState.UNSUBSCRIBED)
    ConsentRecord.objects.create(email="a@example.org", state=ConsentState.BOUNCED)
    ConsentRecord.objects.create(email="b@example.org", state=ConsentState.BOUNCED)
    shown = as_alice.get(LIST).content.decode()
    assert "Addresses consent records exclude now:" in shown
    assert "Unsubscribed 1" in shown
    assert "Bounced 2" in shown
    assert re.search(r'value="every_export"[^>]*checked', shown)


def test_an_administrator_changes_the_consent_rule_and_it_is_audited(as_alice):
    response = as_alice.post(CONSENT_RULE, {"consent-scope": "same_connection"})
    assert response.status_code == 302
    assert ConsentRule.load().scope == ConsentRule.Scope.SAME_CONNECTION
    entry = AuditEntry.objects.get(action="consent_rule.updated")
    assert (entry.before["scope"], entry.after["scope"]) == ("every_export", "same_connection")
    # Saving it again as it is changes nothing, and is no news.
    as_alice.post(CONSENT_RULE, {"consent-scope": "same_connection"})
    assert AuditEntry.objects.filter(action="consent_rule.updated").count() == 1


def test_a_consent_rule_left_unchosen_is_refused_in_words(as_alice):
    response = as_alice.post(CONSENT_RULE, {})
    assert response.status_code == 200
    assert "Choose whom a consent record excludes." in response.content.decode()
    assert ConsentRule.load().scope == ConsentRule.Scope.EVERY_EXPORT


@pytest.mark.parametrize("client_fixture", ["as_bob", "as_charlie"])
def test_other_roles_cannot_change_the_consent_rule(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    response = client.post(CONSENT_RULE, {"consent-scope": "same_connection"})
    assert response.status_code == 403
    assert ConsentRule.load().scope == ConsentRule.Scope.EVERY_EXPORT
