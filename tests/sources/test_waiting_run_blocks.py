"""A run that waits for approval to remove profiles blocks every other run of its source until
an administrator answers: on demand with a clear message, on the schedule as a skipped run
that says why, and in the database by the one-unfinished-run constraint."""

from __future__ import annotations

import pytest
from django.db import IntegrityError
from django.urls import reverse

from config.translation import shown
from sources import services
from sources.models import SourceRun
from tests.sources.places import people
from tests.sources.test_runs import make_source, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(postgresql_place, settings) -> SourceRun:
    """A real run over the removal threshold, waiting for an answer."""
    settings.SOURCE_REMOVAL_APPROVAL_THRESHOLD = 1
    postgresql_place.write(people(6))
    source = make_source(postgresql_place, remove_missing=True)
    run(source)
    postgresql_place.execute("DELETE FROM people WHERE id <= 2")
    waiting = run(source)
    assert waiting.status == "awaiting_approval"
    return waiting


def test_a_run_on_demand_is_refused_with_the_waiting_run_named(waiting):
    with pytest.raises(services.SourceAlreadyRunning) as refused:
        services.run_request(source=waiting.source)
    assert f"Run #{waiting.pk} of this source is waiting for approval" in str(refused.value.message)
    assert SourceRun.objects.filter(source=waiting.source).count() == 2


def test_a_scheduled_run_is_recorded_as_skipped_with_the_reason(waiting):
    outcome = services.sources_run_scheduled()
    assert (outcome["sources_run"], outcome["sources_skipped"]) == (0, 1)
    skipped = SourceRun.objects.get(source=waiting.source, status="skipped")
    assert shown(skipped.error) == f"Skipped: waiting for approval of run #{waiting.pk}."
    assert (skipped.trigger, skipped.rows_read) == ("schedule", 0)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.removal_pending) == ("awaiting_approval", 2)


def test_the_database_refuses_a_second_unfinished_run_while_one_waits(waiting):
    with pytest.raises(IntegrityError):
        SourceRun.objects.create(source=waiting.source, sync_mode="full")


def test_once_answered_the_source_runs_again(waiting, alice):
    services.run_approve_removal(run=waiting, approve=False, user=alice)
    again = services.run_request_now(source=waiting.source, trigger="manual")
    assert again.status == "awaiting_approval"  # the same two are still missing


def test_the_page_says_which_run_waits_and_run_now_explains(as_alice, waiting):
    page = as_alice.get(reverse("sources:detail", args=[waiting.source_id])).content.decode()
    assert f"Run #{waiting.pk} is waiting for approval to remove profiles" in page
    response = as_alice.post(reverse("sources:run_now", args=[waiting.source_id]), follow=True)
    assert f"Run #{waiting.pk} of this source is waiting for approval" in response.content.decode()
