"""Archiving many leavers through Mailchimp's ``/batches`` (mailchimp_api.md §5 and §6, issue 22
item 5): statuses read in one batch, archives in a second, each member's result read back."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from connections.types.base import ListNotFound, MemoryCredentialStore, Transient
from connections.types.mailchimp.backend import MailchimpBackend
from connections.types.mailchimp.client import MailchimpClient, subscriber_hash

API = "https://us21.mc.test/3.0"
RESULTS = "https://results.mc-storage.test"
KEY = "0123abcd0123abcd-us21"
AUDIENCE = "a1b2c3d4e5"


@pytest.fixture(autouse=True)
def mailchimp_urls(settings):
    settings.MAILCHIMP_API_URL = "https://{dc}.mc.test/3.0"
    settings.REDIS_URL = ""


@pytest.fixture
def client():
    client = MailchimpClient(MemoryCredentialStore({"api_key": KEY}))
    client.batch_poll_seconds = (0.0, 0.0)
    return client


@pytest.fixture
def backend(client):
    return MailchimpBackend(client.store, client=client)


def archive_of(*files: list[dict]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for number, entries in enumerate(files):
            data = json.dumps(entries).encode()
            info = tarfile.TarInfo(f"batch/{number}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def problem(status: int, title: str) -> str:
    return json.dumps({"status": status, "title": title, "detail": f"{title}!"})


class FakeBatches:
    """``POST /batches`` answered from ``answer(operation) -> (status, body)``; each batch
    reads "started" once, then "finished" with its results at a storage address."""

    def __init__(self, mocked, answer):
        self.answer = answer
        self.batches: list[list[dict]] = []
        self.mocked = mocked
        mocked.add_callback("POST", f"{API}/batches", callback=self.start)

    def start(self, request):
        operations = json.loads(request.body)["operations"]
        number = len(self.batches)
        self.batches.append(operations)
        results = [
            {
                "status_code": answer[0],
                "operation_id": operation["operation_id"],
                "response": answer[1],
            }
            for operation in operations
            if (answer := self.answer(operation)) is not None
        ]
        half = len(results) // 2
        self.mocked.get(f"{API}/batches/b{number}", json={"id": f"b{number}", "status": "started"})
        self.mocked.get(
            f"{API}/batches/b{number}",
            json={
                "id": f"b{number}",
                "status": "finished",
                "response_body_url": f"{RESULTS}/b{number}.tar.gz",
            },
        )
        self.mocked.get(
            f"{RESULTS}/b{number}.tar.gz",
            body=archive_of(results[:half], results[half:]),
            content_type="application/x-gzip",
        )
        return 200, {}, json.dumps({"id": f"b{number}", "status": "pending"})


STATUSES = {
    "sub@x.com": "subscribed",
    "out@x.com": "unsubscribed",
    "bounced@x.com": "cleaned",
    "waiting@x.com": "pending",
    "gone@x.com": None,
    "transactional@x.com": "transactional",
}
BY_HASH = {subscriber_hash(email): email for email in STATUSES}


def mailchimp(operation):
    email = BY_HASH[operation["path"].rsplit("/", 1)[1]]
    status = STATUSES[email]
    if status is None:
        return 404, problem(404, "Resource Not Found")
    if operation["method"] == "GET":
        return 200, json.dumps({"email_address": email, "status": status})
    if status in ("pending", "cleaned"):
        return 405, problem(405, "Method Not Allowed")
    return 204, ""


def test_many_leavers_take_two_batches_and_opt_outs_are_read_before_archiving(mocked, backend):
    batches = FakeBatches(mocked, mailchimp)
    mocked.get(f"{API}/lists/{AUDIENCE}", json={"id": AUDIENCE})
    emails = list(STATUSES)

    result = backend.remove(AUDIENCE, emails)

    assert (result.accepted, result.failures) == (6, [])
    assert result.opted_out == ["out@x.com", "bounced@x.com"]
    assert result.opted_out_states == {"bounced@x.com": "cleaned"}
    reads, archives = batches.batches
    assert [op["method"] for op in reads] == ["GET"] * 6
    assert all(op["path"].startswith(f"/lists/{AUDIENCE}/members/") for op in reads)
    # Only the archivable are archived, and never permanently deleted.
    assert [(op["method"], BY_HASH[op["path"].rsplit("/", 1)[1]]) for op in archives] == [
        ("DELETE", "sub@x.com"),
        ("DELETE", "out@x.com"),
        ("DELETE", "transactional@x.com"),
    ]
    # Two starts, two status reads each, two downloads and the audience check: 9 calls for
    # six people, whatever their number up to 500 (two calls a person before).
    assert len(mocked.calls) == 9
    downloads = [call.request for call in mocked.calls if call.request.url.startswith(RESULTS)]
    assert len(downloads) == 2
    assert all("Authorization" not in request.headers for request in downloads)


def test_an_archive_refused_inside_the_batch_is_that_members_failure(mocked, backend):
    def refusing(operation):
        if operation["method"] == "DELETE" and BY_HASH[operation["path"][-32:]] == "sub@x.com":
            return 400, problem(400, "Invalid Resource")
        return mailchimp(operation)

    FakeBatches(mocked, refusing)
    result = backend.remove(AUDIENCE, ["sub@x.com", "out@x.com", "transactional@x.com"])
    assert result.accepted == 2
    [failure] = result.failures
    assert (failure.email, failure.code) == ("sub@x.com", "Invalid Resource")
    assert "Invalid Resource!" in str(failure.message)


def test_a_member_missing_from_the_results_is_not_counted_removed(mocked, backend):
    def forgetful(operation):
        if operation["method"] == "DELETE" and operation["path"].endswith(
            subscriber_hash("sub@x.com")
        ):
            return None
        return mailchimp(operation)

    FakeBatches(mocked, forgetful)
    result = backend.remove(AUDIENCE, ["sub@x.com", "transactional@x.com", "out@x.com"])
    assert result.accepted == 2
    [failure] = result.failures
    assert (failure.email, failure.code) == ("sub@x.com", "not_reported")


def test_leavers_of_an_audience_that_is_gone_stop_the_export(mocked, backend):
    FakeBatches(mocked, lambda operation: (404, problem(404, "Resource Not Found")))
    mocked.get(f"{API}/lists/{AUDIENCE}", status=404, json={"title": "Resource Not Found"})
    with pytest.raises(ListNotFound):
        backend.remove(AUDIENCE, ["a@x.com", "b@x.com", "c@x.com"])


def test_a_batch_that_does_not_finish_in_time_is_transient(mocked, client):
    client.batch_wait_seconds = 0.0
    mocked.post(f"{API}/batches", json={"id": "slow", "status": "pending"})
    with pytest.raises(Transient, match="had not finished batch slow"):
        client.archive_many(AUDIENCE, ["a@x.com"])


def test_results_are_read_only_over_https(mocked, client):
    mocked.post(
        f"{API}/batches",
        json={
            "id": "b",
            "status": "finished",
            "response_body_url": "http://results.mc-storage.test/b.tar.gz",
        },
    )
    with pytest.raises(Transient, match="https://"):
        client.member_statuses(AUDIENCE, ["a@x.com"])
    assert len(mocked.calls) == 1


def test_a_damaged_archive_is_transient(mocked, client):
    mocked.post(
        f"{API}/batches",
        json={"id": "b", "status": "finished", "response_body_url": f"{RESULTS}/b.tar.gz"},
    )
    mocked.get(f"{RESULTS}/b.tar.gz", body=b"not a tar", content_type="application/x-gzip")
    with pytest.raises(Transient, match="could not be read"):
        client.member_statuses(AUDIENCE, ["a@x.com"])


def test_at_most_500_operations_go_in_one_batch(client):
    with pytest.raises(ValueError, match="500"):
        client.archive_many(AUDIENCE, [f"m{n}@x.com" for n in range(501)])
