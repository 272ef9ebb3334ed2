"""The pooled session both clients use: a bodiless request is prepared once and sent many times."""

from __future__ import annotations

import requests
import responses

from connections.types.http import new_session

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
