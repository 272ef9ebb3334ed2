"""The consent read-back: page by page into consent records, resumed after a crash, retried as
an export's batch is, one connection never stopping the others. A scripted backend stands in
for the services (each type's own ``read_consent`` has its contract tests)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import DatabaseError
from django.db import connection as db
from django.urls import reverse

from audit.models import AuditEntry
from config.translation import shown
from connections import consent, tasks
from connections.models import Connection, ConsentReadBack
from connections.types import registry
from connections.types.base import (
    AuthRevoked,
    ConsentEvent,
    ConsentPage,
    ConsentState,
    DestinationList,
    Permanent,
    RateLimited,
    Transient,
)
from exports.schedule import run_refresh_chain
from segments.consent import ConsentStaging
from segments.models import ConsentRecord, Segment
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db

MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def event(email: str, state: str = ConsentState.UNSUBSCRIBED, list_id: str = "L1"):
    return ConsentEvent(email=email, state=state, occurred_at=MARCH, list_id=list_id)


class Script:
    """What the scripted service answers: pages by cursor, and errors to raise once, by the
    cursor of the call that meets them."""

    def __init__(self):
        self.pages: dict[str, list[ConsentPage]] = {}
        self.failures: dict[tuple[str, str | None], list[Exception]] = {}
        self.calls: list[tuple[str, tuple[str, ...], datetime | None, str | None]] = []
        self.records_seen: list[int] = []
        self.lists: dict[str, list[DestinationList]] = {}

    def paged(self, name: str, *pages: list[ConsentEvent]) -> None:
        """The account ``name`` answers these pages, chained by cursors "p2", "p3", ..."""
        self.pages[name] = [
            ConsentPage(events, cursor=f"p{index + 2}" if index + 1 < len(pages) else None)
            for index, events in enumerate(pages)
        ]

    def fail(self, name: str, cursor: str | None, *errors: Exception) -> None:
        self.failures.setdefault((name, cursor), []).extend(errors)


_real = registry.backend_class


class ScriptedBackend(_real("autopilot")):  # type: ignore[misc]
    """Autopilot's pages and forms, with a scripted read-back."""

    reads_consent = True
    max_consent_lists = 2
    script: Script

    def __init__(self, store):
        self.store = store
        self.name = Connection.objects.get(pk=store.connection_id).display_name

    def list_destinations(self):
        return self.script.lists.get(
            self.name, [DestinationList("b", "B"), DestinationList("a", "A")]
        )

    def read_consent(self, lists, *, since, cursor=None):
        self.script.calls.append((self.name, tuple(lists), since, cursor))
        self.script.records_seen.append(ConsentRecord.objects.count())
        waiting = self.script.failures.get((self.name, cursor))
        if waiting:
            raise waiting.pop(0)
        pages = self.script.pages.get(self.name, [ConsentPage([])])
        return pages[0 if cursor is None else int(cursor[1:]) - 1]


@pytest.fixture
def script(monkeypatch):
    script = Script()
    ScriptedBackend.script = script
    monkeypatch.setattr(
        registry,
        "backend_class",
        lambda kind: Quiet if kind == "campaign_monitor" else ScriptedBackend,
    )
    return script


class Quiet(_real("campaign_monitor")):  # type: ignore[misc]
    """A type that reads no consent back (every real one does now)."""

    reads_consent = False


@pytest.fixture
def retries(monkeypatch):
    """The read-backs queued again, instead of run (tests run tasks eagerly)."""
    queued: list[dict] = []
    monkeypatch.setattr(
        tasks.read_back_consent, "apply_async", lambda **kwargs: queued.append(kwargs)
    )
    return queued


@pytest.fixture
def run_read(retries, django_capture_on_commit_callbacks):
    """One try of a read, as the task and the chain make it, its retry queued on commit."""

    def run(connection: Connection, **kwargs) -> ConsentReadBack | None:
        with django_capture_on_commit_callbacks(execute=True):
            return consent.read_back_run(connection_id=connection.pk, **kwargs)

    return run


@pytest.fixture
def shop(script):
    return ConnectionFactory(display_name="Shop")


def read(connection: Connection) -> ConsentReadBack:
    return consent.read_back_execute(connection_id=connection.pk)


def emails() -> list[str]:
    return sorted(ConsentRecord.objects.values_list("email", flat=True))


def test_it_reads_every_page_and_stores_them_together_when_the_read_ends(script, shop):
    script.paged(
        "Shop",
        [event("a@example.com"), event("b@example.com")],
        [event("c@example.com"), event("not an address")],
        [event("d@example.com", ConsentState.BOUNCED)],
    )
    state = read(shop)
    assert [call[3] for call in script.calls] == [None, "p2", "p3"]
    assert script.records_seen == [0, 0, 0]
    assert emails() == ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]
    assert (state.status, state.cursor, state.pages_read) == ("succeeded", "", 3)
    assert (state.read_count, state.new_count, state.invalid_count) == (5, 4, 1)
    assert state.last_read_at is not None and state.finished_at is not None


def test_it_stores_the_buffered_pages_once_they_hold_enough_events(script, shop, monkeypatch):
    monkeypatch.setattr(consent, "STORE_EVERY_EVENTS", 2)
    script.paged(
        "Shop",
        [event("a@example.com")],
        [event("b@example.com")],
        [event("c@example.com"), event("d@example.com")],
        [event("e@example.com")],
    )
    state = read(shop)
    assert script.records_seen == [0, 0, 2, 4]
    assert (state.status, state.pages_read, state.new_count) == ("succeeded", 4, 5)


def test_page_by_page_it_stores_each_page_before_asking_for_the_next(script, shop, monkeypatch):
    monkeypatch.setattr(consent, "STORE_EVERY_EVENTS", 1)
    script.paged(
        "Shop",
        [event("a@example.com"), event("b@example.com")],
        [event("c@example.com"), event("not an address")],
        [event("d@example.com", ConsentState.BOUNCED)],
    )
    state = read(shop)
    assert [call[3] for call in script.calls] == [None, "p2", "p3"]
    assert script.records_seen == [0, 2, 3]
    assert emails() == ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]
    assert (state.status, state.cursor, state.pages_read) == ("succeeded", "", 3)
    assert (state.read_count, state.new_count, state.invalid_count) == (5, 4, 1)
    assert state.last_read_at is not None and state.finished_at is not None


def test_it_reads_the_connections_lists_in_id_order_up_to_the_types_limit(script, shop):
    script.lists["Shop"] = [DestinationList(x, x.upper()) for x in ("c", "a", "b")]
    read(shop)
    assert script.calls[0][1] == ("a", "b")


def test_a_read_that_dies_after_page_two_goes_on_at_page_three_and_stores_nothing_twice(
    script, shop
):
    script.paged(
        "Shop",
        [event("a@example.com")],
        [event("b@example.com"), event("a@example.com")],
        [event("c@example.com"), event("b@example.com")],
    )
    script.fail("Shop", "p3", RuntimeError("the worker was killed"))
    with pytest.raises(RuntimeError):
        read(shop)
    # The two pages read were buffered, and stored before the error went on.
    assert script.records_seen == [0, 0, 0]
    stopped = ConsentReadBack.objects.get(connection=shop)
    assert (stopped.status, stopped.cursor, stopped.pages_read) == ("running", "p3", 2)
    assert emails() == ["a@example.com", "b@example.com"]
    first_start = stopped.started_at

    state = read(shop)
    assert [call[3] for call in script.calls] == [None, "p2", "p3", "p3"]
    assert emails() == ["a@example.com", "b@example.com", "c@example.com"]
    assert (state.status, state.pages_read, state.read_count, state.new_count) == (
        "succeeded",
        3,
        5,
        3,
    )
    # The resumed read is the same read: the next one asks for what changed since it began.
    assert state.since == first_start


def test_a_read_killed_outright_loses_only_its_buffer_which_the_next_read_reads_again(script, shop):
    script.paged("Shop", [event("a@example.com")], [event("b@example.com")])
    script.fail("Shop", "p2", SystemExit("the worker was killed"))
    with pytest.raises(SystemExit):
        read(shop)
    assert (ConsentReadBack.objects.get(connection=shop).cursor, emails()) == ("", [])
    state = read(shop)
    assert [call[3] for call in script.calls] == [None, "p2", None, "p2"]
    assert (state.status, emails()) == ("succeeded", ["a@example.com", "b@example.com"])


def test_the_next_read_asks_for_what_changed_since_the_last_complete_read_began(script, shop):
    first = read(shop)
    assert script.calls[0][2] is None
    started = first.started_at
    second = read(shop)
    assert script.calls[1][2] == started
    assert second.since == second.started_at > started


def test_a_failed_read_keeps_its_since_and_its_pages(script, shop, retries, run_read):
    read(shop)
    since = ConsentReadBack.objects.get(connection=shop).since
    script.paged("Shop", [event("a@example.com")], [event("b@example.com")])
    script.fail("Shop", "p2", Transient("Server error 503."))
    state = run_read(shop)
    assert (state.status, state.since, state.cursor, emails()) == (
        "retrying",
        since,
        "p2",
        ["a@example.com"],
    )
    assert "Server error 503." in shown(state.last_error)


def test_a_rate_limit_is_waited_out_for_as_long_as_the_service_asked(
    script, shop, retries, run_read
):
    script.fail("Shop", None, RateLimited("Slow down.", wait=42, hinted=True))
    state = run_read(shop)
    assert state.status == ConsentReadBack.Status.RETRYING
    assert retries == [
        {
            "args": [shop.pk],
            "kwargs": {"attempt": 0, "rate_limited_for": 42},
            "countdown": 42,
        }
    ]


def test_transient_errors_back_off_until_the_retries_run_out(
    script, shop, retries, run_read, settings
):
    settings.EXPORT_MAX_RETRIES = 2
    for attempt in range(3):
        script.fail("Shop", None, Transient("Timed out."))
        state = run_read(shop, attempt=attempt)
    assert [queued["kwargs"]["attempt"] for queued in retries] == [1, 2]
    assert all(0 < queued["countdown"] <= settings.EXPORT_BACKOFF_MAX_SECONDS for queued in retries)
    assert state.status == ConsentReadBack.Status.FAILED
    assert "could not be reached or kept failing: Timed out." in shown(state.last_error)


def test_revoked_credentials_fail_the_read_with_a_clear_message_and_no_retry(
    script, shop, retries, run_read
):
    message = "Autopilot refused the API key. Edit the connection and enter a new one."
    script.fail("Shop", None, AuthRevoked(message))
    state = run_read(shop)
    assert (state.status, shown(state.last_error), retries) == ("failed", message, [])
    shop.refresh_from_db()
    assert shop.status == Connection.Status.NEEDS_REAUTHENTICATION


def test_a_permanent_refusal_fails_with_the_services_message(script, shop, retries, run_read):
    script.fail("Shop", None, Permanent("The account has no API access."))
    state = run_read(shop)
    assert (state.status, shown(state.last_error), retries) == (
        "failed",
        "The account has no API access.",
        [],
    )


def test_a_cursor_the_service_refuses_makes_the_next_read_start_over(script, shop, run_read):
    script.paged("Shop", [event("a@example.com")], [event("b@example.com")])
    script.fail("Shop", "p2", Transient("Timed out."), Permanent("The cursor has expired."))
    run_read(shop)
    assert ConsentReadBack.objects.get(connection=shop).cursor == "p2"
    state = run_read(shop, attempt=1)
    assert (state.status, state.cursor) == ("failed", "")
    state = read(shop)
    assert [call[3] for call in script.calls] == [None, "p2", "p2", None, "p2"]
    assert (state.status, emails()) == ("succeeded", ["a@example.com", "b@example.com"])


def test_never_two_reads_of_one_connection_at_once(script, shop, run_read):
    settings = db.settings_dict
    other = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        password=settings["PASSWORD"] or None,
        autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [consent._LOCK_KEY, shop.pk])
        with pytest.raises(consent.ReadBackAlreadyRunning):
            read(shop)
        assert run_read(shop) is None
        assert script.calls == []
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [consent._LOCK_KEY, shop.pk])
    finally:
        other.close()
    assert read(shop).status == ConsentReadBack.Status.SUCCEEDED


# Stored behind the reading (outside any transaction, as a task reads) ---------------------------

behind = pytest.mark.django_db(transaction=True)


def stored() -> tuple[str, list[str]]:
    return ConsentReadBack.objects.get().cursor, emails()


@behind
def test_outside_a_transaction_the_next_pages_are_read_while_the_ones_before_are_stored(
    script, shop, monkeypatch
):
    monkeypatch.setattr(consent, "STORE_EVERY_EVENTS", 1)
    script.paged("Shop", *([event(f"{name}@example.com")] for name in "abc"))
    asked_while_storing: list[int] = []
    real_apply = ConsentStaging.apply

    def apply_after_a_while(self, **kwargs):
        deadline = time.monotonic() + 5
        while len(script.calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        asked_while_storing.append(len(script.calls))
        return real_apply(self, **kwargs)

    monkeypatch.setattr(ConsentStaging, "apply", apply_after_a_while)
    state = read(shop)
    assert asked_while_storing[0] == 3
    assert emails() == ["a@example.com", "b@example.com", "c@example.com"]
    assert (state.status, state.pages_read, state.new_count) == ("succeeded", 3, 3)
    state.refresh_from_db()
    assert (state.status, state.read_count, state.new_count) == ("succeeded", 3, 3)


@behind
def test_outside_a_transaction_a_failed_page_stores_the_pages_before_it_with_its_cursor(
    script, shop
):
    script.paged(
        "Shop",
        [event("a@example.com")],
        [event("b@example.com"), event("a@example.com")],
        [event("c@example.com")],
    )
    script.fail("Shop", "p3", Transient("Timed out."))
    with pytest.raises(Transient):
        read(shop)
    assert stored() == ("p3", ["a@example.com", "b@example.com"])
    state = read(shop)
    assert [call[3] for call in script.calls] == [None, "p2", "p3", "p3"]
    assert (state.status, state.pages_read, state.read_count, state.new_count) == (
        "succeeded",
        3,
        4,
        3,
    )


@behind
def test_outside_a_transaction_a_killed_read_stores_nothing_past_its_last_store(
    script, shop, monkeypatch
):
    monkeypatch.setattr(consent, "STORE_EVERY_EVENTS", 2)
    pages = [[event(f"{name}@example.com")] for name in "abcd"]
    script.paged("Shop", *pages)
    script.fail("Shop", "p4", SystemExit("the worker was killed"))
    with pytest.raises(SystemExit):
        read(shop)
    # The store of the first two pages may have begun before the kill or not; the third page
    # is never stored without them.
    assert stored() in [("", []), ("p3", ["a@example.com", "b@example.com"])]
    state = read(shop)
    assert (state.status, len(emails())) == ("succeeded", 4)


@behind
def test_outside_a_transaction_a_store_that_fails_fails_the_read_at_its_last_store(
    script, shop, monkeypatch
):
    monkeypatch.setattr(consent, "STORE_EVERY_EVENTS", 1)
    script.paged("Shop", *([event(f"{name}@example.com")] for name in "abc"))
    real_apply = ConsentStaging.apply
    applied: list[int] = []

    def apply_failing_the_second_time(self, **kwargs):
        applied.append(1)
        if len(applied) == 2:
            raise DatabaseError("the disk is full")
        return real_apply(self, **kwargs)

    monkeypatch.setattr(ConsentStaging, "apply", apply_failing_the_second_time)
    with pytest.raises(DatabaseError):
        read(shop)
    state = ConsentReadBack.objects.get()
    assert (state.status, state.cursor, emails()) == ("failed", "p2", ["a@example.com"])
    assert "failed in our database" in shown(state.last_error)
    monkeypatch.setattr(ConsentStaging, "apply", real_apply)
    state = read(shop)
    assert (state.status, len(emails())) == ("succeeded", 3)
    assert [call[3] for call in script.calls][-2:] == ["p2", "p3"]


# The refresh chain -------------------------------------------------------------------------------


def test_a_failing_connection_does_not_stop_the_chain_for_the_next(
    script, retries, django_capture_on_commit_callbacks
):
    broken = ConnectionFactory(display_name="0 broken")
    first = ConnectionFactory(display_name="A first")
    second = ConnectionFactory(display_name="B second")
    ConnectionFactory(display_name="C quiet", campaign_monitor=True)
    ConnectionFactory(display_name="D revoked", status=Connection.Status.NEEDS_REAUTHENTICATION)
    script.fail("0 broken", None, ValueError("a bug in a backend"))
    script.fail("A first", None, Transient("Server error 502."))
    script.paged("B second", [event("ann@example.com")])
    ProfileFactory(customer_id="ann", email="ann@example.com")
    ProfileFactory(customer_id="bo", email="bo@example.com")
    opted_out = SegmentFactory(
        rules={"match": "all", "conditions": [{"consent": "any", "operator": "opted_out"}]}
    )

    with django_capture_on_commit_callbacks(execute=True):
        outcome = run_refresh_chain()

    assert (outcome["consent_reads"], outcome["consent_reads_failed"]) == (1, 2)
    assert [call[0] for call in script.calls] == ["0 broken", "A first", "B second"]
    stopped = ConsentReadBack.objects.get(connection=broken)
    assert stopped.status == "failed" and "unexpected error" in shown(stopped.last_error)
    assert ConsentReadBack.objects.get(connection=first).status == "retrying"
    assert len(retries) == 1 and retries[0]["args"] == [first.pk]
    assert ConsentReadBack.objects.get(connection=second).status == "succeeded"
    # Read back before the segments refresh: the segment already counts the record.
    opted_out.refresh_from_db()
    assert (opted_out.status, opted_out.member_count) == (Segment.Status.ACTIVE, 1)


# On demand ---------------------------------------------------------------------------------------


def test_an_administrator_reads_back_now_from_the_connections_page(
    as_alice, script, shop, django_capture_on_commit_callbacks
):
    script.paged("Shop", [event("ann@example.com"), event("bo@example.com")])
    url = reverse("connections:consent_read", args=[shop.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = as_alice.post(url, follow=True)
    html = response.content.decode()
    assert "Reading consent back from “Shop”" in html
    assert emails() == ["ann@example.com", "bo@example.com"]
    entry = AuditEntry.objects.get(action="connection.consent_read_started")
    assert (entry.object_id, entry.actor_label or entry.actor.username) == (str(shop.pk), "alice")
    page = as_alice.get(reverse("connections:edit", args=[shop.pk])).content.decode()
    assert "Consent read-back" in page and "Read back now" in page
    assert "2 records, 2 new" in page


def test_the_connections_page_shows_the_last_error(as_alice, script, shop, run_read):
    script.fail("Shop", None, Permanent("The account has no API access."))
    run_read(shop)
    page = as_alice.get(reverse("connections:edit", args=[shop.pk])).content.decode()
    assert "The account has no API access." in page and "Failed" in page


@pytest.mark.parametrize("username", ["bob", "charlie"])
def test_contributors_and_viewers_cannot_read_back(client, request, username, script, shop):
    client.force_login(request.getfixturevalue(username))
    response = client.post(reverse("connections:consent_read", args=[shop.pk]))
    assert response.status_code == 403
    assert "Only administrators can see and change connections" in response.content.decode()
    assert not ConsentReadBack.objects.exists() and script.calls == []


def test_the_task_checks_the_role_of_who_asked_again(script, shop, bob):
    ConsentReadBack.objects.create(connection=shop, status=ConsentReadBack.Status.QUEUED)
    tasks.read_back_consent(shop.pk, requested_by=bob.pk)
    state = ConsentReadBack.objects.get(connection=shop)
    assert state.status == "failed" and "Only administrators" in shown(state.last_error)
    assert script.calls == []


def test_a_type_that_does_not_read_consent_is_refused_in_words(as_alice, script):
    quiet = ConnectionFactory(display_name="Quiet", campaign_monitor=True)
    response = as_alice.post(reverse("connections:consent_read", args=[quiet.pk]), follow=True)
    assert "connections do not read consent back yet" in response.content.decode()


def test_the_page_polls_the_read_back_while_it_runs(as_alice, script, shop):
    ConsentReadBack.objects.create(connection=shop, status=ConsentReadBack.Status.RUNNING)
    url = reverse("connections:edit", args=[shop.pk])
    assert 'hx-trigger="every 2s"' in as_alice.get(url).content.decode()
    partial = as_alice.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section class="stack" id="consent-read-back"')
    assert "Reading" in partial and "Display name" not in partial
    ConsentReadBack.objects.filter(connection=shop).update(status="succeeded")
    assert "every 2s" not in as_alice.get(url, HTTP_HX_REQUEST="true").content.decode()
