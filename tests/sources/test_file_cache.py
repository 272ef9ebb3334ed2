"""A file at an address is read again only when it changed: a run remembers the ETag and
Last-Modified of the file it read whole, and the next run asks with If-None-Match /
If-Modified-Since. A 304 is a run that reads nothing and says so; a changed file is downloaded
as before. Against a real local HTTP server that keeps a log of what it was asked."""

from __future__ import annotations

import hashlib
import os
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.urls import reverse

from segments.models import Profile
from sources import services
from sources.kinds.base import Read
from sources.kinds.duckdb.kind import DuckDBFileSource
from sources.models import Source, SourceRun
from tests.sources.places import ParquetPlace, people
from tests.sources.test_runs import make_source, run

pytestmark = pytest.mark.django_db


class FileServer(ThreadingHTTPServer):
    """Serves the files of ``folder`` with the validators asked for (``etag``: a hash of the
    bytes; ``last_modified``: the file's time), answering 304 as HTTP says; ``asked`` logs each
    request's path, its conditional headers and the status answered."""

    def __init__(self, folder: Path, validators: tuple[str, ...]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.folder = folder
        self.validators = validators
        self.asked: list[dict] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        path = self.server.folder / self.path.lstrip("/").split("?")[0]
        asked = {
            "path": self.path,
            "if_none_match": self.headers.get("If-None-Match"),
            "if_modified_since": self.headers.get("If-Modified-Since"),
        }
        self.server.asked.append(asked)
        if not path.is_file():
            asked["status"] = 404
            self.send_error(404)
            return
        body = path.read_bytes()
        headers = {}
        if "etag" in self.server.validators:
            headers["ETag"] = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if "last_modified" in self.server.validators:
            headers["Last-Modified"] = formatdate(int(path.stat().st_mtime), usegmt=True)
        not_modified = (
            asked["if_none_match"] == headers.get("ETag")
            if asked["if_none_match"] is not None
            else asked["if_modified_since"] is not None
            and asked["if_modified_since"] == headers.get("Last-Modified")
        )
        asked["status"] = 304 if not_modified else 200
        self.send_response(asked["status"])
        for name, value in headers.items():
            self.send_header(name, value)
        if not not_modified:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not not_modified:
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve(tmp_path):
    """``serve(*validators)`` starts a server of ``tmp_path / "www"``; stopped after the test."""
    started: list[FileServer] = []
    folder = tmp_path / "www"
    folder.mkdir()

    def start(*validators: str) -> FileServer:
        server = FileServer(folder, validators)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def write(server: FileServer, rows, *, mtime: float | None = None) -> None:
    path = server.folder / "people.parquet"
    ParquetPlace("file", {"path": str(path)}).write(rows)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def file_source(server: FileServer, **options) -> Source:
    place = ParquetPlace("file", {"path": f"{server.base}/people.parquet"}, read_table="")
    return make_source(place, **options)


def test_a_file_that_has_not_changed_is_not_downloaded_again_and_the_run_says_so(serve, as_alice):
    server = serve("etag", "last_modified")
    write(server, people(45))
    source = file_source(server)
    first = run(source)
    assert (first.status, first.rows_read, first.created_count) == ("succeeded", 45, 45)
    assert server.asked[-1]["if_none_match"] is None  # nothing read yet: nothing to ask
    # Changed here only: a run that read the file would write it back.
    Profile.objects.filter(customer_id="C00002").update(email="changed@example.com")

    second = run(source)

    assert server.asked[-1]["status"] == 304
    assert server.asked[-1]["if_none_match"] == source_etag(source)
    assert second.status == SourceRun.Status.FILE_UNCHANGED
    counts = [
        second.rows_read,
        second.created_count,
        second.updated_count,
        second.unchanged_count,
        second.rejected_count,
        second.removed_count,
    ]
    assert counts == [0] * 6 and second.error == ""
    assert Profile.objects.get(customer_id="C00002").email == "changed@example.com"
    source.refresh_from_db()
    assert (source.status, source.last_error) == (Source.Status.HEALTHY, "")
    history = as_alice.get(reverse("sources:detail", args=[source.pk])).content.decode()
    assert '<span class="badge file_unchanged">File not changed</span>' in history
    page = as_alice.get(reverse("sources:run", args=[second.pk])).content.decode()
    assert "said it had not changed since the last complete reading" in page


def source_etag(source: Source) -> str:
    source.refresh_from_db()
    return source.file_version["etag"]


def test_the_run_after_an_unchanged_one_asks_again_with_the_same_version(serve):
    server = serve("etag")
    write(server, people(5))
    source = file_source(server)
    run(source)
    assert [run(source).status, run(source).status] == ["file_unchanged", "file_unchanged"]
    assert server.asked[-1]["if_none_match"] == server.asked[-2]["if_none_match"] is not None


def test_a_changed_file_is_downloaded_and_read_as_before(serve):
    server = serve("etag", "last_modified")
    write(server, people(45))
    source = file_source(server)
    run(source)
    write(server, people(50, start=1)[:40] + people(10, start=100))

    second = run(source)

    assert server.asked[-1]["if_none_match"] is not None and server.asked[-1]["status"] == 200
    assert (second.status, second.rows_read) == ("succeeded", 50)
    assert (second.created_count, second.unchanged_count) == (10, 40)
    assert Profile.objects.filter(customer_id="C00100").exists()
    assert run(source).status == "file_unchanged"  # the new version is remembered


def test_a_server_that_gives_only_last_modified_is_asked_if_modified_since(serve):
    server = serve("last_modified")
    write(server, people(5), mtime=1_700_000_000)
    source = file_source(server)
    run(source)

    assert run(source).status == "file_unchanged"
    assert server.asked[-1]["if_modified_since"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert server.asked[-1]["if_none_match"] is None

    write(server, people(6), mtime=1_700_000_100)
    changed = run(source)
    assert (changed.status, changed.rows_read, changed.created_count) == ("succeeded", 6, 1)


def test_a_server_that_gives_no_version_is_read_in_full_every_time(serve):
    server = serve()
    write(server, people(5))
    source = file_source(server)
    run(source)
    second = run(source)
    assert (second.status, second.rows_read, second.unchanged_count) == ("succeeded", 5, 5)
    assert server.asked[-1] == {
        "path": "/people.parquet",
        "if_none_match": None,
        "if_modified_since": None,
        "status": 200,
    }


def test_a_run_that_fails_leaves_no_version_so_the_next_reads_the_file_whole(serve):
    server = serve("etag")
    write(server, people(5))
    original = (server.folder / "people.parquet").read_bytes()
    source = file_source(server)
    run(source)
    (server.folder / "people.parquet").write_bytes(b"not a parquet file")
    assert run(source).status == "failed"
    Profile.objects.filter(customer_id="C00002").update(email="changed@example.com")
    # The very file the first run read, with its ETag: still read whole.
    (server.folder / "people.parquet").write_bytes(original)

    third = run(source)

    assert server.asked[-1]["if_none_match"] is None
    assert (third.status, third.rows_read, third.updated_count) == ("succeeded", 5, 1)
    assert Profile.objects.get(customer_id="C00002").email == "person2@example.com"


def test_editing_the_source_forgets_the_version(serve):
    server = serve("etag")
    write(server, people(5))
    source = file_source(server)
    run(source)
    source = make_source(
        ParquetPlace("file", {"path": f"{server.base}/people.parquet"}, read_table=""),
        source=source,
        mapping={"customer_id": "customer", "email": "email"},
    )
    again = run(source)
    assert server.asked[-1]["if_none_match"] is None
    assert (again.status, again.rows_read) == ("succeeded", 5)


def test_the_preview_and_the_connection_test_always_download_the_file(serve):
    server = serve("etag")
    write(server, people(5))
    source = file_source(server)
    run(source)
    kind = DuckDBFileSource(dict(source.connection_settings))
    kind.preview(Read())
    kind.test(Read())
    assert [asked["if_none_match"] for asked in server.asked[-2:]] == [None, None]
    assert [asked["status"] for asked in server.asked[-2:]] == [200, 200]
    assert run(source).status == "file_unchanged"


def test_an_unchanged_file_counts_as_run_in_the_scheduled_refresh(serve):
    server = serve("etag")
    write(server, people(5))
    source = file_source(server)
    run(source)
    assert services.sources_run_scheduled() == {
        "sources_run": 1,
        "sources_failed": 0,
        "sources_skipped": 0,
    }
    assert source.runs.first().status == "file_unchanged"
