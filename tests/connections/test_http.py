"""The pooled session both clients use: a bodiless request is prepared once and sent many times."""

from __future__ import annotations

import pytest
import requests
import responses

from connections.types.base import RateLimited, Transient
from connections.types.http import ServiceClient, new_session, wait_from_headers
from fakes.testing import running_fake

URL = "https://api.example.test/v1/subscribers/list-1.json"


@responses.activate
def test_query_string_is_encoded_as_requests_would_encode_it():
    responses.add(responses.DELETE, URL, status=200)
    session = new_session(URL)
    params = {"email": "Ann+News @Example.com", "note": "ø/é&x=1", "page": 2, "skip": None}

    session.request("DELETE", URL, params=params, headers={"Authorization": "Bearer t"})

    expected = requests.Request("DELETE", URL, params=params).prepare().url
    assert responses.calls[0].request.url == expected
    assert "skip" not in expected


@responses.activate
def test_each_call_carries_its_own_query_and_the_headers():
    responses.add(responses.DELETE, URL, status=200)
    session = new_session(URL)
    headers = {"Authorization": "Bearer first"}

    for email in ("a@example.com", "b@example.com"):
        session.request("DELETE", URL, params={"email": email}, headers=headers)
    session.request("DELETE", URL, params={"email": "c@example.com"}, headers={"X-Other": "1"})

    urls = [call.request.url for call in responses.calls]
    assert urls == [
        f"{URL}?email=a%40example.com",
        f"{URL}?email=b%40example.com",
        f"{URL}?email=c%40example.com",
    ]
    sent = [call.request.headers for call in responses.calls]
    assert sent[0]["Authorization"] == sent[1]["Authorization"] == "Bearer first"
    assert "Authorization" not in sent[2] and sent[2]["X-Other"] == "1"
    assert all(headers["User-Agent"].startswith("AudienceRelay/") for headers in sent)


@responses.activate
def test_a_request_with_a_body_takes_the_ordinary_path():
    responses.add(responses.POST, URL, status=201, json={"ok": True})
    session = new_session(URL)

    reply = session.request("POST", URL, params={"a": "1"}, json={"Subscribers": []})

    assert reply.json() == {"ok": True}
    assert responses.calls[0].request.url == f"{URL}?a=1"
    assert responses.calls[0].request.body == b'{"Subscribers": []}'


@responses.activate
def test_a_redirected_call_is_followed_as_requests_would_follow_it():
    moved = "https://api.example.test/v2/subscribers/list-1.json"
    responses.add(responses.GET, URL, status=301, headers={"Location": moved})
    responses.add(responses.GET, moved, status=200, json={"moved": True})
    session = new_session(URL)

    reply = session.request("GET", URL, params={"page": 1}, headers={"Authorization": "Bearer t"})

    assert reply.status_code == 200 and reply.json() == {"moved": True}
    assert [call.request.url for call in responses.calls] == [f"{URL}?page=1", moved]


def test_calls_without_a_body_reuse_one_pooled_connection():
    with running_fake("campaign_monitor") as fake:
        url = f"{fake.base_url}/clients.json"
        session = new_session(url)
        for _attempt in range(3):
            reply = session.request("GET", url, params={"page": 1}, headers={"X-Try": "1"})
            assert reply.status_code == 401  # read, and the connection handed back

        pools = session.get_adapter(url).poolmanager.pools  # a container that is not iterable
        assert [pools[key].num_connections for key in list(pools.keys())] == [1]


def test_a_ca_bundle_from_the_environment_applies_to_https_only(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/company-ca.pem")

    assert new_session("https://api.example.test/v1").verify == "/etc/ssl/certs/company-ca.pem"
    assert new_session("http://127.0.0.1:8101/api").verify is True


def test_a_closed_pool_is_replaced():
    with running_fake("campaign_monitor") as fake:
        url = f"{fake.base_url}/clients.json"
        session = new_session(url)
        adapter = session.get_adapter(url)
        assert session.request("GET", url, params={"page": 1}).status_code == 401
        [first_pool] = adapter._pools.values()

        first_pool.close()
        adapter.poolmanager.clear()

        assert session.request("GET", url, params={"page": 2}).status_code == 401
        [pool] = adapter._pools.values()
        assert pool is not first_pool and pool.pool is not None


@responses.activate
def test_responses_carry_status_headers_and_the_request():
    responses.add(responses.GET, URL, status=429, headers={"Retry-After": "3"}, json={"Code": 1})
    session = new_session(URL)

    reply = session.request("GET", URL, params={"page": 1})

    assert reply.status_code == 429 and reply.json() == {"Code": 1}
    assert reply.headers["retry-after"] == "3"
    assert reply.url == f"{URL}?page=1" and reply.request.method == "GET"
    assert reply.encoding == "utf-8"


@responses.activate
def test_a_rate_limited_call_with_retry_after_reaches_the_client():
    responses.add(responses.DELETE, URL, status=429, headers={"Retry-After": "3"})
    session = new_session(URL)

    reply = session.request("DELETE", URL, params={"email": "a@example.com"})

    assert reply.status_code == 429 and wait_from_headers(reply) == 3.0
    assert len(responses.calls) == 1


class Plain(ServiceClient):
    service = "Plain"
    default_rate_limit_wait = 2.5


def test_every_destinations_client_sends_through_the_shared_base():
    from importlib import import_module

    from connections.types import registry

    for kind, path in registry.TYPES.items():
        module = import_module(path.rsplit(".", 2)[0] + ".client")
        clients = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and value.__module__ == module.__name__
            and value.__name__.endswith("Client")
        ]
        assert clients and all(issubclass(c, ServiceClient) for c in clients), kind


@pytest.mark.parametrize(
    ("status", "headers", "error_class", "wait", "hinted"),
    [
        (429, {}, RateLimited, 2.5, False),
        (429, {"Retry-After": "4"}, RateLimited, 4.0, True),
        (503, {"Retry-After": "3"}, Transient, 3.0, None),
        (500, {}, Transient, None, None),
    ],
)
def test_the_base_turns_429_and_5xx_into_typed_errors(status, headers, error_class, wait, hinted):
    with responses.RequestsMock() as mocked:
        mocked.get("https://plain.test/x", status=status, headers=headers)
        client = Plain(None, base_url="https://plain.test")
        error = client._common_error(client._send("GET", "https://plain.test/x"), message="m")
    assert isinstance(error, error_class) and error.wait == wait
    assert hinted is None or error.hinted is hinted


def test_the_base_makes_a_timeout_transient_and_leaves_other_statuses_to_the_client():
    with responses.RequestsMock() as mocked:
        mocked.get("https://plain.test/slow", body=requests.Timeout("slow"))
        mocked.get("https://plain.test/missing", status=404)
        client = Plain(None, base_url="https://plain.test")
        with pytest.raises(Transient, match="Plain could not be reached"):
            client._send("GET", "https://plain.test/slow")
        assert (
            client._common_error(client._send("GET", "https://plain.test/missing"), message="m")
            is None
        )
