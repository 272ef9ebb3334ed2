"""Fault injection, keep-alive and the command line, shared by both fakes."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from fakes.testing import FakeControl, running_fake

REPO_ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = {
    "campaign_monitor": {"Authorization": "Basic ZGVtby1jbS1hcGkta2V5Ong="},  # demo-cm-api-key:x
    "autopilot": {"autopilotapikey": "demo-autopilot-key"},
}
LISTS_PATH = {"campaign_monitor": "/clients.json", "autopilot": "/lists"}
KINDS = ["campaign_monitor", "autopilot"]


def call(fake, kind: str, **kwargs) -> requests.Response:
    return requests.get(fake.base_url + LISTS_PATH[kind], headers=CREDENTIALS[kind], **kwargs)


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def fake(kind):
    with running_fake(kind, rate_limit=0) as running:
        yield running


class RecordedWaits:
    """The fake's stop event, noting how long each answer waited on it before going out."""

    def __init__(self, event):
        self.event = event
        self.seconds: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.seconds.append(timeout)
        return self.event.wait(timeout)

    def __getattr__(self, name: str):
        return getattr(self.event, name)


def test_latency_delays_every_answer(fake, kind, monkeypatch):
    waits = RecordedWaits(fake.server.stopping)
    monkeypatch.setattr(fake.server, "stopping", waits)
    fake.configure(latency_ms=150)
    assert call(fake, kind).ok
    assert call(fake, kind).ok
    assert waits.seconds == [0.15, 0.15]
    assert fake.state(summary=True)["stats"]["faults_injected"]["latency"] == 2


def test_a_429_burst_without_headers(fake, kind):
    fake.configure(burst_429=2)
    responses = [call(fake, kind) for _ in range(3)]
    assert [r.status_code for r in responses] == [429, 429, 200]
    assert not {"Retry-After", "X-RateLimit-Reset"} & set(responses[0].headers)
    if kind == "campaign_monitor":
        assert responses[0].json() == {"Code": 429, "Message": "Rate limit exceeded"}
    else:
        assert responses[0].json()["error"] == "Too Many Requests"
    assert fake.state(summary=True)["stats"]["served_429"] == 2


def test_a_429_burst_with_rate_headers(fake, kind):
    fake.configure(burst_429=1, burst_429_headers="ratelimit", burst_429_reset=7)
    response = call(fake, kind)
    assert response.status_code == 429
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Reset"] == "7"
    assert "X-RateLimit-Limit" in response.headers
    assert "Retry-After" not in response.headers


def test_a_429_burst_with_retry_after(fake, kind):
    fake.configure(burst_429=1, burst_429_headers="retry-after", burst_429_reset=3)
    response = call(fake, kind)
    assert response.headers["Retry-After"] == "3"
    assert "X-RateLimit-Reset" not in response.headers


def test_the_next_requests_get_a_server_error(fake, kind):
    fake.configure(error_next=1, error_status=503)
    first, second = call(fake, kind), call(fake, kind)
    assert (first.status_code, second.status_code) == (503, 200)


def test_a_server_error_rate_is_seeded(kind):
    def statuses() -> list[int]:
        with running_fake(kind, rate_limit=0, error_rate=0.5, seed=42) as fake:
            return [call(fake, kind).status_code for _ in range(12)]

    first = statuses()
    assert first == statuses()
    assert {200, 500} == set(first)


def test_a_timeout_hangs_after_processing(kind):
    with running_fake(kind, rate_limit=0, timeout_next=1, timeout_seconds=1.0) as fake:
        with pytest.raises(requests.exceptions.ReadTimeout):
            call(fake, kind, timeout=0.2)
        assert call(fake, kind, timeout=2).ok
        stats = fake.state(summary=True)["stats"]
        assert stats["faults_injected"]["timeout"] == 1
        assert stats["total_requests"] == 2


def test_the_write_of_a_timed_out_request_is_applied():
    with running_fake("autopilot", rate_limit=0, timeout_next=1, timeout_seconds=1.0) as fake:
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(
                f"{fake.base_url}/contact",
                json={"contact": {"Email": "a@x.com"}},
                headers=CREDENTIALS["autopilot"],
                timeout=0.2,
            )
        assert fake.state(email="a@x.com")["accounts"][0]["contacts"]


def test_a_dropped_connection_gets_no_answer(fake, kind):
    fake.configure(drop_next=1)
    with requests.Session() as session, pytest.raises(requests.exceptions.ConnectionError):
        session.get(fake.base_url + LISTS_PATH[kind], headers=CREDENTIALS[kind])
    assert call(fake, kind).ok
    assert fake.state(summary=True)["stats"]["responses_by_status"]["dropped"] == 1


def test_faults_can_target_one_path(fake, kind):
    fake.configure(error_next=1, fault_path="/no-such-endpoint")
    assert call(fake, kind).ok


def test_control_endpoints_are_never_faulted(fake, kind):
    fake.configure(drop_next=5, error_next=5, burst_429=5)
    assert fake.state(summary=True)["kind"] == kind


def test_connections_are_kept_alive(fake, kind):
    host, port = fake.root_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    path = fake.api_prefix + LISTS_PATH[kind]
    for _ in range(3):
        connection.request("GET", path, headers=CREDENTIALS[kind])
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        assert response.getheader("Connection") != "close"
    connection.close()


def test_bad_fault_config_is_refused(fake):
    with pytest.raises(Exception, match="burst_429_headers"):
        fake.configure(burst_429_headers="sometimes")


@pytest.mark.parametrize(
    ("kind_name", "flags", "prefix"),
    [
        ("campaign_monitor", ["--client-id", "cli-id", "--latency-ms", "1"], "/api/v3.3"),
        ("autopilot", ["--api-key", "k1", "--api-key", "k2", "--rate-limit", "9"], "/v1"),
    ],
)
def test_the_command_line_starts_a_configured_fake(kind_name, flags, prefix):
    process = subprocess.Popen(
        [sys.executable, "-m", "fakes", kind_name, "--port", "0", "--quiet", *flags],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        root_url = re.search(r"listening on (http://\S+)", banner).group(1)
        config = FakeControl(root_url, prefix).state(summary=True)["config"]
        if kind_name == "campaign_monitor":
            assert config["settings"]["client_id"] == "cli-id"
            assert config["faults"]["latency_ms"] == 1
        else:
            assert config["settings"]["api_keys"] == ["k1", "k2"]
            assert config["settings"]["rate_limit"] == 9.0
    finally:
        process.terminate()
        process.wait(timeout=5)
