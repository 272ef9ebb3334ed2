"""A run's results at a glance: a retry says so in the history (Trigger column), the progress
bar shows refusals (amber) and a failed run (red) with words, the failures come in tabs (the
service's refusals, our skips and each kind of skip) with their counts and downloads, and the
export's page says "queued" only while the run is."""

from __future__ import annotations

import csv
import io

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from exports import runs
from exports.models import ExportRun, ExportRunFailure
from exports.selectors import run_progress
from exports.templatetags.exports_tags import started_by

pytestmark = pytest.mark.django_db
Status = ExportRun.Status


def a_run(export, alice, **fields) -> ExportRun:
    return ExportRun.objects.create(
        export=export, trigger=ExportRun.Trigger.USER, triggered_by=alice, **fields
    )


def test_a_retry_is_marked_as_one_where_the_history_says_who_started_it(
    make_export, everyone, alice
):
    export = make_export(everyone)
    first = a_run(export, alice, status=Status.COMPLETED_WITH_WARNINGS, failed=2)
    retry = a_run(export, alice, status=Status.SUCCEEDED, retry_of=first)
    assert started_by(first) == started_by(retry) == "alice"
    html = render_to_string("exports/_run_history.html", {"runs": [retry, first]})
    link = reverse("exports:run_detail", args=[first.pk])
    assert f'<a href="{link}">Retry of run #{first.pk}</a> <span class="hint">alice</span>' in html
    assert "Run by alice" in html


def test_the_run_page_of_a_retry_links_the_run_it_retried(as_charlie, make_export, everyone, alice):
    export = make_export(everyone)
    first = a_run(export, alice, status=Status.COMPLETED_WITH_WARNINGS, failed=2)
    retry = a_run(export, alice, status=Status.SUCCEEDED, retry_of=first)
    html = as_charlie.get(reverse("exports:run_detail", args=[retry.pk])).content.decode()
    assert f'href="{reverse("exports:run_detail", args=[first.pk])}">Retry of run #' in html


@pytest.mark.parametrize(
    ("fields", "look"),
    [
        ({"status": Status.SUCCEEDED}, 'class="progress"'),
        ({"status": Status.COMPLETED_WITH_WARNINGS, "failed": 3}, 'class="progress with-failures"'),
        ({"status": Status.RUNNING, "failed": 1}, 'class="progress with-failures"'),
        ({"status": Status.FAILED}, 'class="progress failed"'),
    ],
)
def test_the_progress_bar_shows_refusals_and_failure(make_export, everyone, alice, fields, look):
    run = a_run(make_export(everyone), alice, **fields)
    html = render_to_string("exports/_progress.html", {"progress": run_progress(run)})
    assert look in html


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"status": Status.COMPLETED_WITH_WARNINGS, "failed": 3}, "3 refused by the service"),
        ({"status": Status.FAILED, "failed": 3}, "The run failed"),
    ],
)
def test_the_colour_of_the_progress_bar_is_said_in_words(
    make_export, everyone, alice, fields, words
):
    run = a_run(make_export(everyone), alice, **fields)
    html = render_to_string("exports/_progress.html", {"progress": run_progress(run)})
    assert f">{words}</span>" in html


def test_a_successful_run_has_no_words_beside_its_bar(make_export, everyone, alice):
    run = a_run(make_export(everyone), alice, status=Status.SUCCEEDED, skipped=1)
    html = render_to_string("exports/_progress.html", {"progress": run_progress(run)})
    assert "progress-state" not in html


def failures_of(run: ExportRun) -> None:
    """Two refusals, three skips without an e-mail and one opted out."""
    rows = [("c1", "refused", False), ("c2", "bad_request", False)]
    rows += [(f"m{n}", "missing_email", True) for n in range(3)]
    rows += [("o1", "opted_out", True)]
    ExportRunFailure.objects.bulk_create(
        ExportRunFailure(run=run, customer_id=customer_id, code=code, reason="r", skipped=skipped)
        for customer_id, code, skipped in rows
    )


def test_the_failures_come_in_tabs_with_their_counts(as_charlie, make_export, everyone, alice):
    run = a_run(make_export(everyone), alice, status=Status.COMPLETED_WITH_WARNINGS, failed=2)
    failures_of(run)
    url = reverse("exports:run_detail", args=[run.pk])
    html = as_charlie.get(url).content.decode()
    start = html.index('id="failure-filters"')
    tabs = html[start : html.index("</nav>", start)]
    assert f'<a href="{url}" aria-current="page">All <span class="tab-count">(6)</span></a>' in tabs
    assert f'href="{url}?show=refused">Refused by the service <span class="tab-count">(2)' in tabs
    assert f'href="{url}?show=skipped">Skipped by us <span class="tab-count">(4)' in tabs
    assert f'href="{url}?show=missing_email">No email address <span class="tab-count">(3)' in tabs
    assert f'href="{url}?show=opted_out">Opted out at the service <span' in tabs
    assert "show=duplicate_email" not in tabs  # no such skip in this run

    refused = as_charlie.get(url, {"show": "refused"}).content.decode()
    assert 'href="?show=refused" aria-current="page"' not in refused
    assert f'href="{url}?show=refused" aria-current="page"' in refused
    assert "<td>c1</td>" in refused and "<td>m0</td>" not in refused
    csv_url = reverse("exports:run_failures_csv", args=[run.pk])
    assert f'href="{csv_url}?show=refused" download' in refused

    missing = as_charlie.get(url, {"show": "missing_email"}).content.decode()
    assert "<td>m2</td>" in missing
    assert "<td>c1</td>" not in missing and "<td>o1</td>" not in missing


def test_an_unknown_filter_shows_every_failure(as_charlie, make_export, everyone, alice):
    run = a_run(make_export(everyone), alice, status=Status.COMPLETED_WITH_WARNINGS, failed=2)
    failures_of(run)
    html = as_charlie.get(
        reverse("exports:run_detail", args=[run.pk]), {"show": "everything'"}
    ).content.decode()
    assert "<td>c1</td>" in html and "<td>o1</td>" in html


def test_the_failures_csv_follows_the_filter(as_charlie, make_export, everyone, alice):
    run = a_run(make_export(everyone), alice, status=Status.COMPLETED_WITH_WARNINGS, failed=2)
    failures_of(run)
    url = reverse("exports:run_failures_csv", args=[run.pk])

    def customer_ids(show: str) -> list[str]:
        response = as_charlie.get(url, {"show": show} if show else {})
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        return [row[0] for row in list(csv.reader(io.StringIO(text)))[1:]]

    assert customer_ids("") == ["c1", "c2", "m0", "m1", "m2", "o1"]
    assert customer_ids("refused") == ["c1", "c2"]
    assert customer_ids("skipped") == ["m0", "m1", "m2", "o1"]
    assert customer_ids("opted_out") == ["o1"]
    response = as_charlie.get(url, {"show": "refused"})
    assert "failures-refused.csv" in response["Content-Disposition"]


def test_the_export_page_says_queued_only_while_the_run_is(as_alice, make_export, everyone, alice):
    export = make_export(everyone)
    response = as_alice.post(
        reverse("exports:run", args=[export.pk]), {"next": "detail"}, follow=True
    )
    html = response.content.decode()
    assert html.count("is queued to run") == 1  # said once, from the run, not by a message
    assert 'id="run-state"' in html
    run = ExportRun.objects.get(export=export)
    runs.transition(run, Status.RUNNING)
    live = as_alice.get(export.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert "is running" in live and "queued to run" not in live
    runs.transition(run, Status.SUCCEEDED)

    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):  # the page, and what it polls
        html = as_alice.get(export.get_absolute_url(), **headers).content.decode()
        assert "is queued" not in html and 'id="run-state"' not in html


def test_a_retry_is_said_to_be_queued_on_the_export_page(as_alice, make_export, everyone, alice):
    export = make_export(everyone)
    first = a_run(export, alice, status=Status.COMPLETED_WITH_WARNINGS, failed=1)
    ExportRunFailure.objects.create(run=first, customer_id="c1", code="refused", reason="r")
    response = as_alice.post(reverse("exports:run_retry", args=[first.pk]), follow=True)
    html = response.content.decode()
    assert f"The retry of run #{first.pk} is queued" in html
    assert "queued to be sent again" not in html
