"""A Parquet or CSV file at an http(s) address: downloaded with ``requests`` to a temporary
file, size-bounded, then read by DuckDB there (no ``httpfs``), from a local server the test
starts (plain http:// is allowed only to 127.0.0.1 and localhost in tests)."""

from __future__ import annotations

import csv
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.translation import shown
from segments.models import Profile
from sources.kinds.base import Read, SourceError, StepStatus
from sources.kinds.duckdb import download
from sources.kinds.duckdb.forms import FileSettingsForm
from sources.kinds.duckdb.kind import DuckDBFileSource
from tests.sources.places import COLUMNS, ParquetPlace, people
from tests.sources.test_runs import make_source, run

pytestmark = pytest.mark.django_db


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path):
    """A local HTTP server serving ``tmp_path / "www"``; yields its base address."""
    folder = tmp_path / "www"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def write_csv(path: Path, rows) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def test_a_parquet_file_at_an_address_is_downloaded_and_synced(served):
    folder, base = served
    ParquetPlace("file", {"path": str(folder / "people.parquet")}).write(people(45))
    place = ParquetPlace("file", {"path": f"{base}/people.parquet"}, read_table="")
    result = run(make_source(place))
    assert (result.status, result.rows_read, result.created_count) == ("succeeded", 45, 45)
    assert Profile.objects.get(customer_id="C00002").attributes["score"] == 3


def test_a_csv_file_at_an_address_is_read_with_the_types_duckdb_finds(served):
    folder, base = served
    write_csv(folder / "people.csv", people(3))
    kind = DuckDBFileSource({"path": f"{base}/people.csv?signature=abc"})
    columns, rows = kind.preview(Read())
    types = {column.name: column.field_type for column in columns}
    assert (types["score"], types["active"], types["born"]) == ("number", "boolean", "date")
    assert [row[1] for row in rows] == ["C00001", "C00002", "C00003"]


def test_the_connection_test_downloads_then_reads_the_columns(served):
    folder, base = served
    write_csv(folder / "people.csv", people(3))
    steps = DuckDBFileSource({"path": f"{base}/people.csv"}).test(Read())
    assert [str(step.name) for step in steps] == [
        "Download the file",
        "Open the file and read its columns",
        "Read what was chosen",
    ]
    assert steps[0].status == StepStatus.PASSED
    assert "from “127.0.0.1” to a temporary file" in str(steps[0].message)
    assert "has 9 columns" in str(steps[1].message)


def test_a_file_on_the_server_has_no_download_step(tmp_path):
    path = tmp_path / "people.csv"
    write_csv(path, people(1))
    steps = DuckDBFileSource({"path": str(path)}).test(Read())
    assert [(str(step.name), step.status) for step in steps] == [
        ("Open the file and read its columns", StepStatus.PASSED),
        ("Read what was chosen", StepStatus.SKIPPED),
    ]


def test_a_file_that_cannot_be_downloaded_fails_the_first_step_and_skips_the_rest(served):
    _folder, base = served
    steps = DuckDBFileSource({"path": f"{base}/gone.csv"}).test(Read())
    assert [step.status for step in steps] == [
        StepStatus.FAILED,
        StepStatus.SKIPPED,
        StepStatus.SKIPPED,
    ]
    assert "answered HTTP 404" in str(steps[0].message)


def test_a_file_over_the_size_limit_is_refused_and_nothing_is_left_behind(
    served, settings, monkeypatch, tmp_path
):
    folder, base = served
    write_csv(folder / "people.csv", people(200))
    settings.SOURCE_FILE_MAX_BYTES = 1024
    monkeypatch.setattr(download.tempfile, "tempdir", str(tmp_path))
    with pytest.raises(SourceError) as refused:
        DuckDBFileSource({"path": f"{base}/people.csv"}).columns(Read())
    assert str(refused.value) == (
        "The file is larger than 1.0\xa0KB, the most a source downloads (SOURCE_FILE_MAX_BYTES)."
    )
    assert not list(tmp_path.glob("audience-relay-source-*"))


def test_a_missing_file_fails_the_run_with_the_servers_answer(served):
    _folder, base = served
    place = ParquetPlace("file", {"path": f"{base}/gone.parquet?token=secret"}, read_table="")
    result = run(make_source(place))
    assert result.status == "failed"
    assert shown(result.error) == "The server at “127.0.0.1” answered HTTP 404 for the file."
    assert "secret" not in result.error


def test_a_server_that_does_not_answer_fails_within_the_timeout(settings):
    settings.SOURCE_FILE_READ_TIMEOUT_SECONDS = 0.2
    silent = ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    thread = threading.Thread(target=silent.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(SourceError) as refused:
            DuckDBFileSource(
                {"path": f"http://127.0.0.1:{silent.server_address[1]}/people.csv"}
            ).columns(Read())
    finally:
        silent.shutdown()
        silent.server_close()
    assert str(refused.value) == "The server at “127.0.0.1” did not answer within 0.2 seconds."


class _Silent(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        threading.Event().wait(1)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("http://files.example.com/people.parquet", "Use an https:// address"),
        ("ftp://files.example.com/people.parquet", "Only https:// addresses can be downloaded"),
        ("s3://bucket/people.parquet", "Only https:// addresses can be downloaded"),
    ],
)
def test_the_form_accepts_only_https_addresses(path, problem):
    form = FileSettingsForm({"path": path, "file_format": "auto"})
    assert not form.is_valid() and problem in form.errors["path"][0]


@pytest.mark.parametrize(
    "path", ["https://files.example.com/people.parquet", "http://127.0.0.1:8000/p.csv", "/d/*.csv"]
)
def test_the_form_takes_an_https_address_a_local_test_server_or_a_path(path):
    assert FileSettingsForm({"path": path, "file_format": "auto"}).is_valid()
