"""Data > Exports: the list, Add export / Edit, the row actions, progress and failures."""

from __future__ import annotations

import datetime as dt

import pytest
import responses
from django.urls import reverse
from django.utils import timezone, translation

from config.translation import gettext_later
from connections.models import Connection
from connections.types.base import (
    AuthRevoked,
    Backend,
    DestinationList,
    MemoryCredentialStore,
    Permanent,
    Transient,
)
from connections.types.campaign_monitor.client import CampaignMonitorClient
from exports import runs
from exports.messages import for_error
from exports.models import Export, ExportRun, ExportRunFailure
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db

SHARED = Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS


class FakeLists(Backend):
    """A backend that only lists destinations, as the pages need."""

    def __init__(self, lists=None, error=None):
        self.lists = (
            lists
            if lists is not None
            else [
                DestinationList(id="list-1", name="Newsletter subscribers"),
                DestinationList(id="list-2", name="Customers"),
            ]
        )
        self.error = error

    def list_destinations(self):
        if self.error:
            raise self.error
        return self.lists


@pytest.fixture
def lists(monkeypatch):
    fake = FakeLists()
    monkeypatch.setattr("connections.services.backend_for", lambda connection: fake)
    return fake


@pytest.fixture
def shared(db):
    """A Campaign Monitor connection shared with contributors."""
    return ConnectionFactory(campaign_monitor=True, display_name="Marketing CM", who_can_use=SHARED)


@pytest.fixture
def segment(db):
    ProfileFactory()
    segment = SegmentFactory(name="Subscribers")
    segment.member_count = 1
    segment.save()
    return segment


def export_on(connection, *segments, **fields) -> Export:
    export = Export.objects.create(
        display_name=fields.pop("display_name", "Weekly newsletter"),
        connection=connection,
        list_id=fields.pop("list_id", "list-1"),
        **fields,
    )
    export.segments.set(segments)
    return export


def mapping_data(*rows) -> dict:
    """The mapping rows' inputs as the page posts them: (profile field, destination key[,
    new field's name, its type[, when empty]])."""
    full = [(*row, "", "", "leave")[:5] if len(row) == 2 else (*row, "leave")[:5] for row in rows]
    parts = ("profile_field", "destination", "new_name", "new_type", "when_empty")
    return {f"mapping-{part}": [row[index] for row in full] for index, part in enumerate(parts)}


def form_data(connection, segment, **overrides) -> dict:
    return {
        "connection": str(connection.pk),
        "display_name": "Weekly newsletter",
        "list_id": "list-1",
        **mapping_data(("email", "email"), ("first_name", "first_name")),
        "segments": [str(segment.pk)],
        "schedule_enabled": "on",
        **overrides,
    }


def page(response) -> str:
    return response.content.decode()


# The list ---------------------------------------------------------------------------------------


def test_the_list_shows_every_column_of_an_export(as_alice, shared, segment):
    export = export_on(shared, segment)
    ExportRun.objects.create(
        export=export, trigger="schedule", status="succeeded", finished_at=timezone.now()
    )
    html = page(as_alice.get(reverse("exports:list")))
    for text in (
        "Weekly newsletter",
        "Campaign Monitor",
        "Marketing CM",
        "Subscribers",
        "Successful",
        "Your permissions",
        "Edit and run",
    ):
        assert text in html
    assert "campaign_monitor.svg" in html


def test_an_export_that_never_ran_says_so_and_a_detached_one_shows_no_connection(as_alice, segment):
    export_on(None, segment, display_name="Orphan", schedule_enabled=False)
    html = page(as_alice.get(reverse("exports:list")))
    assert "Never run" in html and "No connection" in html and ">Off<" in html


def test_search_finds_exports_by_name_connection_or_type(as_alice, shared, connection, segment):
    export_on(shared, segment, display_name="Spring sale")
    export_on(connection, segment, display_name="Journeys")
    listed = lambda q: page(as_alice.get(reverse("exports:list"), {"q": q}))  # noqa: E731
    assert "Spring sale" in listed("spring") and "Journeys" not in listed("spring")
    assert "Spring sale" in listed("marketing") and "Journeys" not in listed("marketing")
    assert "Journeys" in listed("autopilot") and "Spring sale" not in listed("autopilot")
    assert "No export matches" in listed("nothing-like-this")


def test_a_contributor_sees_exports_on_an_administrators_only_connection_as_view_only(
    as_bob, connection, segment
):
    export = export_on(connection, segment)
    html = page(as_bob.get(reverse("exports:list")))
    assert "View only" in html
    assert reverse("exports:detail", args=[export.pk]) in html
    assert reverse("exports:run", args=[export.pk]) not in html
    assert reverse("exports:edit", args=[export.pk]) not in html


def test_a_contributor_cannot_change_run_or_remove_an_export_on_an_administrators_only_connection(
    as_bob, connection, segment
):
    export = export_on(connection, segment)
    for name, method in [
        ("exports:edit", "get"),
        ("exports:run", "post"),
        ("exports:duplicate", "post"),
        ("exports:schedule", "post"),
        ("exports:detach", "post"),
        ("exports:delete", "get"),
        ("exports:delete", "post"),
    ]:
        response = getattr(as_bob, method)(reverse(name, args=[export.pk]))
        assert response.status_code == 403, name
        assert "only administrators may use" in page(response)
    assert ExportRun.objects.count() == 0
    assert Export.objects.get(pk=export.pk).connection == connection


def test_a_viewer_sees_exports_read_only_and_is_refused_every_change(as_charlie, shared, segment):
    export = export_on(shared, segment)
    html = page(as_charlie.get(reverse("exports:list")))
    assert "View only" in html and "Add export" not in html and "Run all" not in html
    detail = page(as_charlie.get(reverse("exports:detail", args=[export.pk])))
    assert "Weekly newsletter" in detail and "Progress details" in detail
    assert reverse("exports:run", args=[export.pk]) not in detail
    assert reverse("exports:edit", args=[export.pk]) not in detail
    assert as_charlie.post(reverse("exports:run", args=[export.pk])).status_code == 403
    assert as_charlie.get(reverse("exports:edit", args=[export.pk])).status_code == 403
    assert as_charlie.post(reverse("exports:delete", args=[export.pk])).status_code == 403
    assert as_charlie.get(reverse("exports:create")).status_code == 403
    assert Export.objects.filter(pk=export.pk).exists()
    assert not ExportRun.objects.exists()


# Add export / Edit -----------------------------------------------------------------------------


def test_add_export_offers_only_the_connections_the_user_may_use_grouped_by_type(
    as_bob, shared, connection, segment
):
    html = page(as_bob.get(reverse("exports:create")))
    assert "Connection for export" in html
    assert "Marketing CM" in html and 'id="group-campaign_monitor"' in html
    assert f'id="connection-{connection.pk}"' not in html and 'id="group-autopilot"' not in html
    assert f'id="connection-{shared.pk}"' in html
    assert "Subscribers" in html and "1 member" in html
    assert "Campaign Monitor takes up to 1,000,000 profiles per export" in html
    assert "Data matching" in html and "Load lists" in html


def test_the_forms_hints_come_from_the_types_of_the_offered_connections(as_alice, shared, segment):
    from django.conf import settings
    from django.utils.html import escape

    from connections.types.registry import backend_class

    ConnectionFactory(kind="mailchimp", credentials={"api_key": "k-us21"}, who_can_use=SHARED)
    html = page(as_alice.get(reverse("exports:create")))
    for kind in ("mailchimp", "campaign_monitor"):
        backend = backend_class(kind)
        assert escape(str(backend.list_hint)) in html and escape(str(backend.fields_hint)) in html
    assert "Mailchimp takes up to 1,000,000 profiles per export." in html
    assert escape(str(backend_class("ortto").list_hint)) not in html  # no Ortto connection
    template = (settings.BASE_DIR / "templates" / "exports" / "edit.html").read_text()
    assert not [
        name for name in ("Autopilot", "Campaign Monitor", "Mailchimp", "Ortto") if name in template
    ]


def test_without_a_usable_connection_the_page_says_an_administrator_must_add_one(
    as_bob, connection
):
    html = page(as_bob.get(reverse("exports:create")))
    assert "An administrator must add a connection" in html


def test_adding_an_export_saves_it_and_does_not_run_it(as_bob, bob, shared, segment, lists):
    response = as_bob.post(reverse("exports:create"), form_data(shared, segment), follow=True)
    export = Export.objects.get()
    assert response.redirect_chain[-1][0] == reverse("exports:detail", args=[export.pk])
    assert (export.connection, export.list_id, export.list_name) == (
        shared,
        "list-1",
        "Newsletter subscribers",
    )
    assert (export.email_field, export.first_name_field, export.last_name_field) == (
        "email",
        "first_name",
        "",
    )
    assert list(export.segments.all()) == [segment]
    assert export.schedule_enabled and export.created_by == bob
    assert not ExportRun.objects.exists()
    assert "Saving does not run it" in page(response)


def test_the_form_says_what_is_missing_in_words(as_bob, shared, segment):
    response = as_bob.post(reverse("exports:create"), {"display_name": ""})
    html = page(response)
    assert response.status_code == 200
    assert "Choose the connection to export through." in html
    assert "Give the export a name you will recognise." in html
    assert "Give the ID of the list to export to" in html
    assert "Map a profile field to Email: the service needs each person" in html
    assert "Pick at least one segment to export." in html
    assert not Export.objects.exists()


def test_a_list_id_the_account_cannot_see_is_refused(as_bob, shared, segment, lists):
    response = as_bob.post(reverse("exports:create"), form_data(shared, segment, list_id="nope"))
    assert "This list does not exist in the Campaign Monitor account behind “Marketing CM”" in page(
        response
    )
    assert not Export.objects.exists()


def autopilot_lists(fake) -> list[tuple[str, str]]:
    """(title, id) of every list in the fake's accounts."""
    return [
        (item["title"], list_id)
        for account in fake.state()["accounts"]
        for list_id, item in account["lists"].items()
    ]


def test_an_autopilot_export_creates_its_list_on_save_or_uses_the_one_of_that_name(
    as_bob, segment, autopilot
):
    connection = ConnectionFactory(
        display_name="Marketing AP",
        who_can_use=SHARED,
        credentials={"api_key": "demo-autopilot-key"},
    )
    new_list = {"list_id": "", "new_list_name": "Spring promo"}

    response = as_bob.post(
        reverse("exports:create"), form_data(connection, segment, **new_list), follow=True
    )
    again = as_bob.post(
        reverse("exports:create"),
        form_data(connection, segment, display_name="Spring reminders", **new_list),
    )

    created = [list_id for title, list_id in autopilot_lists(autopilot) if title == "Spring promo"]
    assert len(created) == 1
    first, second = Export.objects.order_by("pk")
    assert (first.list_id, first.list_name) == (created[0], "Spring promo")
    assert f"sends to the list “Spring promo” (ID {created[0]}) in Autopilot" in page(response)
    assert again.status_code == 302 and second.list_id == created[0]
    assert not ExportRun.objects.exists()


def test_a_list_is_named_only_for_a_type_that_creates_lists_and_never_beside_a_list_id(
    as_bob, shared, segment, lists
):
    on_campaign_monitor = as_bob.post(
        reverse("exports:create"), form_data(shared, segment, list_id="", new_list_name="Promo")
    )
    both = as_bob.post(reverse("exports:create"), form_data(shared, segment, new_list_name="Promo"))
    neither = as_bob.post(reverse("exports:create"), form_data(shared, segment, list_id=""))

    assert "Lists of Campaign Monitor are created in Campaign Monitor itself" in page(
        on_campaign_monitor
    )
    assert "Either give a List ID or name a new list, not both" in page(both)
    assert "Give the ID of the list to export to" in page(neither)
    assert not Export.objects.exists()


def test_when_the_service_refuses_to_create_the_list_the_form_says_why_and_saves_nothing(
    as_bob, segment, autopilot
):
    connection = ConnectionFactory(who_can_use=SHARED, credentials={"api_key": "revoked-key"})

    response = as_bob.post(
        reverse("exports:create"),
        form_data(connection, segment, list_id="", new_list_name="Spring promo"),
    )

    assert response.status_code == 200
    assert "Autopilot did not create the list:" in page(response)
    assert not Export.objects.exists()
    assert "Spring promo" not in [title for title, _id in autopilot_lists(autopilot)]


def test_a_contributor_cannot_forge_an_administrators_only_connection_into_the_form(
    as_bob, connection, shared, segment, lists
):
    response = as_bob.post(reverse("exports:create"), form_data(connection, segment))
    assert response.status_code == 200
    assert "The one you sent is not available to you" in page(response)
    assert not Export.objects.exists()

    export = export_on(shared, segment)
    response = as_bob.post(
        reverse("exports:edit", args=[export.pk]), form_data(connection, segment)
    )
    assert "The one you sent is not available to you" in page(response)
    export.refresh_from_db()
    assert export.connection == shared


def test_an_administrator_may_use_an_administrators_only_connection(
    as_alice, connection, segment, lists
):
    response = as_alice.post(reverse("exports:create"), form_data(connection, segment))
    assert response.status_code == 302
    assert Export.objects.get().connection == connection


def test_when_the_service_cannot_list_its_lists_the_id_is_kept_with_a_warning(
    as_bob, shared, segment, lists
):
    lists.error = Permanent("Campaign Monitor could not be reached.")
    response = as_bob.post(reverse("exports:create"), form_data(shared, segment), follow=True)
    assert Export.objects.get().list_id == "list-1"
    assert "could not be checked with the service" in page(response)


def test_saving_more_profiles_than_the_service_takes_warns(as_alice, connection, segment, lists):
    segment.member_count = 150_000
    segment.save()
    response = as_alice.post(reverse("exports:create"), form_data(connection, segment), follow=True)
    html = page(response)
    assert Export.objects.exists()
    assert "The chosen segments hold 150,000 profiles; Autopilot takes at most 100,000" in html


def test_editing_changes_the_export(as_bob, shared, segment, lists):
    export = export_on(shared, segment)
    other = SegmentFactory(name="Buyers")
    html = page(as_bob.get(reverse("exports:edit", args=[export.pk])))
    assert 'value="Weekly newsletter"' in html and "checked" in html
    response = as_bob.post(
        reverse("exports:edit", args=[export.pk]),
        form_data(
            shared, other, display_name="Buyers digest", list_id="list-2", schedule_enabled=""
        ),
    )
    assert response.status_code == 302
    export.refresh_from_db()
    assert (export.display_name, export.list_id, export.list_name) == (
        "Buyers digest",
        "list-2",
        "Customers",
    )
    assert list(export.segments.all()) == [other] and not export.schedule_enabled


def test_load_lists_offers_the_accounts_lists(as_bob, shared, lists):
    html = page(
        as_bob.get(
            reverse("exports:destination_lists"), {"connection": shared.pk, "list_id": "list-2"}
        )
    )
    assert '<option value="list-1">Newsletter subscribers (list-1)</option>' in html
    assert '<option value="list-2" selected>' in html


def test_load_lists_explains_a_service_error_without_a_stack_trace(as_bob, shared, lists):
    lists.error = Permanent("The access token was revoked.")
    html = page(as_bob.get(reverse("exports:destination_lists"), {"connection": shared.pk}))
    assert "Campaign Monitor did not return the lists: The access token was revoked." in html

    lists.error = RuntimeError("boom")
    html = page(as_bob.get(reverse("exports:destination_lists"), {"connection": shared.pk}))
    assert "did not answer as expected" in html and "boom" not in html


def test_load_lists_does_not_answer_for_a_connection_the_user_may_not_use(
    as_bob, connection, lists
):
    html = page(as_bob.get(reverse("exports:destination_lists"), {"connection": connection.pk}))
    assert "Choose a connection first" in html and "Newsletter subscribers" not in html


# Row actions -----------------------------------------------------------------------------------


def test_run_queues_a_run_and_a_second_run_says_it_is_already_running(as_bob, bob, shared, segment):
    export = export_on(shared, segment)
    response = as_bob.post(reverse("exports:run", args=[export.pk]), follow=True)
    assert "is queued to run" in page(response)
    run = ExportRun.objects.get()
    assert (run.trigger, run.triggered_by, run.status) == ("user", bob, "queued")

    response = as_bob.post(reverse("exports:run", args=[export.pk]), follow=True)
    assert "“Weekly newsletter” is already running" in page(response)
    assert ExportRun.objects.count() == 1


def test_run_all_queues_the_scheduled_exports_and_names_those_already_running(
    as_bob, shared, connection, segment
):
    first = export_on(shared, segment, display_name="First")
    busy = export_on(shared, segment, display_name="Busy")
    export_on(shared, segment, display_name="Unscheduled", schedule_enabled=False)
    export_on(connection, segment, display_name="Admins only")
    export_on(None, segment, display_name="Detached")
    ExportRun.objects.create(export=busy, trigger="schedule", status="running")

    html = page(as_bob.post(reverse("exports:run_all"), follow=True))

    assert "Queued 1 export with a schedule to run." in html
    assert "Already running, so not queued again: Busy." in html
    assert list(ExportRun.objects.filter(status="queued").values_list("export", flat=True)) == [
        first.pk
    ]


def test_run_all_names_an_export_whose_run_awaits_approval_apart_and_does_not_queue_it(
    as_bob, shared, segment
):
    first = export_on(shared, segment, display_name="First")
    held = export_on(shared, segment, display_name="Held <b>")
    waiting = ExportRun.objects.create(export=held, trigger="schedule", status="awaiting_approval")
    run_url = reverse("exports:run_detail", args=[waiting.pk])

    asked = page(as_bob.get(reverse("exports:run_all")))
    to_run = asked.split('<ul id="run-all-exports">')[1].split("</ul>")[0]
    apart = asked.split('<ul id="run-all-waiting">')[1].split("</ul>")[0]
    assert "First</a>" in to_run and "Held" not in to_run
    assert "of the 1 export" in asked
    assert f'<a href="{run_url}">Waiting for approval of run #{waiting.pk}</a>' in apart
    assert "Held &lt;b&gt;</a>" in apart

    html = page(as_bob.post(reverse("exports:run_all"), follow=True))

    assert "Queued 1 export with a schedule to run." in html
    assert "Already running" not in html
    assert (
        f'Waiting for approval, so not queued: <a href="{run_url}">'
        f"Held &lt;b&gt; (run #{waiting.pk})</a>." in html
    )
    assert list(held.runs.values_list("pk", "status")) == [(waiting.pk, "awaiting_approval")]
    assert first.runs.get().status == "queued"


def test_run_all_with_only_exports_awaiting_approval_offers_nothing_to_run(as_bob, shared, segment):
    held = export_on(shared, segment, display_name="Held")
    ExportRun.objects.create(export=held, trigger="schedule", status="awaiting_approval")

    asked = page(as_bob.get(reverse("exports:run_all")))

    assert 'id="run-all-waiting"' in asked and 'id="run-all-exports"' not in asked
    assert '<button type="submit"' not in asked.split("<h1>Run all</h1>")[1]
    assert "Turn on Schedule for an export first" not in asked


def test_create_duplicate_copies_the_settings_with_the_schedule_off(as_bob, bob, shared, segment):
    export = export_on(shared, segment, list_name="Newsletter subscribers", email_field="email")
    response = as_bob.post(reverse("exports:duplicate", args=[export.pk]))
    copy = Export.objects.exclude(pk=export.pk).get()
    assert response.url == reverse("exports:edit", args=[copy.pk])
    assert copy.display_name == "Copy of Weekly newsletter"
    assert (copy.connection, copy.list_id, copy.list_name) == (
        shared,
        "list-1",
        "Newsletter subscribers",
    )
    assert list(copy.segments.all()) == [segment]
    assert not copy.schedule_enabled and copy.created_by == bob


def test_schedule_turns_on_and_off(as_bob, shared, segment):
    export = export_on(shared, segment)
    as_bob.post(reverse("exports:schedule", args=[export.pk]), {"enabled": "0"})
    export.refresh_from_db()
    assert not export.schedule_enabled
    response = as_bob.post(
        reverse("exports:schedule", args=[export.pk]), {"enabled": "1", "next": "detail"}
    )
    assert response.url == reverse("exports:detail", args=[export.pk])
    export.refresh_from_db()
    assert export.schedule_enabled


def test_detach_keeps_the_settings_shows_no_connection_and_refuses_to_run(as_bob, shared, segment):
    export = export_on(shared, segment, list_name="Newsletter subscribers")
    ExportRun.objects.create(export=export, trigger="schedule")  # queued: cancelled by detach
    as_bob.post(reverse("exports:detach", args=[export.pk]))
    export.refresh_from_db()
    assert export.connection is None
    assert (export.list_id, list(export.segments.all())) == ("list-1", [segment])
    assert ExportRun.objects.get().status == "cancelled"

    detail = page(as_bob.get(reverse("exports:detail", args=[export.pk])))
    assert "No connection" in detail and reverse("exports:run", args=[export.pk]) not in detail
    response = as_bob.post(reverse("exports:run", args=[export.pk]), follow=True)
    assert "has no connection" in page(response)
    assert ExportRun.objects.count() == 1


def test_remove_asks_for_confirmation_then_removes_the_export(as_bob, shared, segment):
    export = export_on(shared, segment)
    url = reverse("exports:delete", args=[export.pk])
    assert "Remove export “Weekly newsletter”?" in page(as_bob.get(url))
    assert Export.objects.exists()
    response = as_bob.post(url, follow=True)
    assert not Export.objects.exists()
    assert "Export “Weekly newsletter” removed." in page(response)


def test_cancel_job_stops_the_active_run(as_bob, shared, segment):
    export = export_on(shared, segment)
    queued = ExportRun.objects.create(export=export, trigger="user")
    response = as_bob.post(reverse("exports:cancel", args=[export.pk]), follow=True)
    queued.refresh_from_db()
    assert queued.status == "cancelled"
    assert "cancelled before it started" in page(response)

    running = ExportRun.objects.create(export=export, trigger="user", status="running")
    as_bob.post(reverse("exports:cancel", args=[export.pk]))
    running.refresh_from_db()
    assert running.cancel_requested and running.status == "running"


# Progress, history and failures ---------------------------------------------------------------


def test_progress_details_poll_while_the_run_is_active(as_charlie, shared, segment, monkeypatch):
    export = export_on(shared, segment)
    # The rate and the time left are read at the moment of the request: hold it still, so a
    # slow request (a busy machine, tests in parallel) sees the run 10 s old all the same.
    now = timezone.now()
    monkeypatch.setattr("exports.selectors.timezone.now", lambda: now)
    ExportRun.objects.create(
        export=export,
        trigger="user",
        status="running",
        profiles_total=1000,
        to_send=990,
        recipients_ready=True,
        sent=400,
        failed=10,
        skipped=10,
        started_at=now - dt.timedelta(seconds=10),
    )
    response = as_charlie.get(reverse("exports:detail", args=[export.pk]), HTTP_HX_REQUEST="true")
    html = page(response)
    assert "<html" not in html  # the partial only
    assert 'hx-trigger="every 1s"' in html
    assert 'role="progressbar"' in html and 'aria-valuenow="42"' in html
    assert "42%" in html
    assert "1,000" in html and ">400<" in html and ">10<" in html
    assert "Profiles per second" in html and ">41<" in html
    assert "Time left" in html and "14 s" in html


def test_a_finished_run_shows_its_outcome_and_stops_polling(as_alice, shared, segment):
    export = export_on(shared, segment)
    ExportRun.objects.create(
        export=export,
        trigger="schedule",
        status="failed",
        last_error="The service refused the export: Unknown list.",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    html = page(as_alice.get(reverse("exports:detail", args=[export.pk])))
    assert "hx-trigger" not in html
    assert "The service refused the export: Unknown list." in html
    assert "Run history" in html and "Schedule" in html and "Failed" in html


def test_the_run_page_lists_failures_with_our_skip_codes_in_words_100_a_page(
    as_charlie, shared, segment
):
    export = export_on(shared, segment)
    run = ExportRun.objects.create(
        export=export, trigger="schedule", status="completed_with_warnings"
    )
    ExportRunFailure.objects.create(
        run=run, customer_id="c1", email="", code="missing_email", reason="No email", skipped=True
    )
    ExportRunFailure.objects.create(
        run=run, customer_id="c2", email="x@y", code="invalid_email", reason="Bad", skipped=True
    )
    ExportRunFailure.objects.bulk_create(
        ExportRunFailure(
            run=run,
            customer_id=f"r{n}",
            email=f"r{n}@example.com",
            code="1",
            reason="Invalid Email Address",
        )
        for n in range(148)
    )
    html = page(as_charlie.get(reverse("exports:run_detail", args=[run.pk])))
    assert "No email address" in html and "Not a valid email address" in html
    assert "Invalid Email Address" in html
    assert html.count("<tr>") == 101  # the head and 100 rows
    assert "Page 1 of 2" in html and "Download CSV" in html
    second = page(as_charlie.get(reverse("exports:run_detail", args=[run.pk]), {"page": 2}))
    assert second.count("<tr>") == 51


def test_the_failures_csv_holds_every_failure_of_the_run(as_charlie, shared, segment):
    export = export_on(shared, segment)
    run = ExportRun.objects.create(
        export=export, trigger="schedule", status="completed_with_warnings"
    )
    ExportRunFailure.objects.create(
        run=run, customer_id="c1", email="", code="duplicate_email", reason="Dup", skipped=True
    )
    ExportRunFailure.objects.create(
        run=run, customer_id="c2", email="=cmd@x.com", code="1", reason="Invalid Email Address"
    )
    response = as_charlie.get(reverse("exports:run_failures_csv", args=[run.pk]))
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    lines = body.lstrip("\ufeff").splitlines()
    assert lines[0] == "customer_id,email,code,reason,explanation,skipped,warning"
    assert lines[1] == (
        "c1,,duplicate_email,Another profile with the same email address is sent instead.,"
        "Duplicate email address,yes,no"
    )
    assert lines[2] == "c2,'=cmd@x.com,1,Invalid Email Address,1,no,no"


def test_our_skip_reasons_are_shown_in_the_readers_language(as_charlie, shared, segment):
    export = export_on(shared, segment)
    run = ExportRun.objects.create(
        export=export, trigger="schedule", status="completed_with_warnings"
    )
    ExportRunFailure.objects.create(
        run=run,
        customer_id="c1",
        email="x@y",
        code="invalid_email",
        reason="The email address is not valid.",
        skipped=True,
    )
    ExportRunFailure.objects.create(
        run=run, customer_id="c2", email="a@b.com", code="1", reason="Invalid Email Address"
    )
    norwegian = {"HTTP_ACCEPT_LANGUAGE": "nb"}

    html = page(as_charlie.get(reverse("exports:run_detail", args=[run.pk]), **norwegian))
    csv = as_charlie.get(reverse("exports:run_failures_csv", args=[run.pk]), **norwegian)

    assert "E-postadressen er ikke gyldig." in html
    assert "The email address is not valid." not in html
    assert "Invalid Email Address" in html  # the service's words, as it sent them
    body = b"".join(csv.streaming_content).decode()
    assert "E-postadressen er ikke gyldig." in body


def test_a_run_that_failed_in_a_worker_reads_in_the_readers_language(as_charlie, shared, segment):
    run = ExportRun.objects.create(export=export_on(shared, segment), trigger="schedule")
    runs.transition(run, ExportRun.Status.RUNNING)
    unreachable = gettext_later(
        "%(service)s could not be reached: %(reason)s. Try again in a few minutes."
    ) % {"service": "Autopilot", "reason": "HTTP 503"}
    with translation.override("en"):  # the worker's language
        runs.transition(run, ExportRun.Status.FAILED, last_error=for_error(Transient(unreachable)))

    url = reverse("exports:run_detail", args=[run.pk])
    html = page(as_charlie.get(url, HTTP_ACCEPT_LANGUAGE="nb"))

    assert "Kunne ikke nå Autopilot: HTTP 503." in html
    assert "could not be reached" not in html


def revoked_by_campaign_monitor() -> AuthRevoked:
    """The error our Campaign Monitor client makes of a revoked token (401, Code 122)."""
    api = "https://cm.test/api/v3.3"
    client = CampaignMonitorClient(
        MemoryCredentialStore({"access_token": "a", "refresh_token": "r"}), api_url=api
    )
    with responses.RequestsMock() as service:
        service.get(f"{api}/clients.json", status=401, json={"Code": 122, "Message": "Revoked"})
        with pytest.raises(AuthRevoked) as caught:
            client.clients()
    return caught.value


def test_a_run_stopped_by_revoked_credentials_says_so_once(as_alice, shared, segment):
    export = export_on(shared, segment)
    run = ExportRun.objects.create(export=export, trigger="schedule")
    runs.transition(run, ExportRun.Status.RUNNING)
    runs.transition(
        run, ExportRun.Status.FAILED, last_error=for_error(revoked_by_campaign_monitor())
    )

    html = page(as_alice.get(reverse("exports:detail", args=[export.pk])))

    assert html.count("no longer accepts") == 1
    assert html.lower().count("authenticate") == 1
    assert "Edit the connection and select Authenticate with Campaign Monitor again." in html


def test_run_sends_the_segment_and_the_page_shows_the_outcome(
    as_bob, shared, everyone, backend, django_capture_on_commit_callbacks
):
    from segments.services import segment_refresh

    ProfileFactory(email="ann@example.com")
    ProfileFactory(email="not-an-email")
    segment_refresh(segment_id=everyone.pk)
    export = export_on(shared, everyone)
    with django_capture_on_commit_callbacks(execute=True):
        as_bob.post(reverse("exports:run", args=[export.pk]))
    run = ExportRun.objects.get()
    assert run.status == "succeeded"
    assert set(backend.lists["list-1"]) == {"ann@example.com"}
    html = page(as_bob.get(reverse("exports:detail", args=[export.pk])))
    assert 'aria-valuenow="100"' in html and "Successful" in html
    assert "1 profile was skipped for its own data" in html
    run_page = page(as_bob.get(reverse("exports:run_detail", args=[run.pk])))
    assert "Completed with warnings: the service refused some profiles." in run_page
    assert "bob" in html


# Elsewhere: connections and segments ----------------------------------------------------------


def test_removing_a_connection_lists_its_exports_and_offers_to_detach_or_remove_them(
    as_alice, shared, segment
):
    export = export_on(shared, segment)
    url = reverse("connections:delete", args=[shared.pk])
    html = page(as_alice.get(url))
    assert "Weekly newsletter" in html and "Detach them" in html and "Remove them" in html

    response = as_alice.post(url)  # no choice made: refused
    assert "not removed" in page(response)
    assert Connection.objects.filter(pk=shared.pk).exists()

    as_alice.post(url, {"exports": "detach"})
    assert not Connection.objects.filter(pk=shared.pk).exists()
    export.refresh_from_db()
    assert export.connection is None and export.list_id == "list-1"
    assert "No connection" in page(as_alice.get(reverse("exports:list")))


def test_removing_a_connection_can_remove_its_exports_too(as_alice, shared, segment):
    export_on(shared, segment)
    as_alice.post(reverse("connections:delete", args=[shared.pk]), {"exports": "remove"})
    assert not Connection.objects.filter(pk=shared.pk).exists()
    assert not Export.objects.exists()


def test_a_segment_page_lists_the_exports_that_include_it(as_charlie, shared, segment):
    export_on(shared, segment, display_name="Spring sale")
    html = page(as_charlie.get(reverse("segments:detail", args=[segment.pk])))
    assert "Used by exports" in html and "Spring sale" in html and "Marketing CM" in html


def test_the_navigation_shows_exports_and_system(as_charlie):
    html = page(as_charlie.get(reverse("exports:list")))
    assert reverse("exports:list") in html and reverse("system:status") in html
