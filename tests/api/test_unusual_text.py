"""Text the database cannot store, and nesting no parser survives, are refused with a 400 that
says what is wrong, never a server error: NUL characters, lone surrogates (``\\ud800`` escapes
without their other half) and lists or objects nested 1,000 levels and more.

Beside the named cases, every operation of the OpenAPI document gets these inputs in each of
its path and query parameters and as its body (the fuzzing of test_schemathesis.py draws from
the document, which already forbids NUL, so it does not try them)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from api.parsers import MAX_DEPTH
from tests.api.conftest import client_for
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db

NUL = "a\x00b"
SURROGATE = "a\ud800b"
#: In an address: NUL, and the UTF-8 bytes a surrogate would have (Django keeps them escaped).
IN_ADDRESS = ["a%00b", "a%ED%A0%80b"]


def condition(field="email", operator="contains", value="x") -> dict:
    return {"match": "all", "conditions": [{"field": field, "operator": operator, "value": value}]}


def nested_json(depth: int, inner: str = '{"field":"email","operator":"contains","value":"x"}'):
    return '{"match":"all","conditions":[' * depth + inner + "]}" * depth


def send(client, method: str, url: str, body: str):
    """``body`` as it is: the test client would refuse to encode a lone surrogate itself."""
    return client.generic(method, url, body, content_type="application/json")


def assert_refused(response, *words: str) -> dict:
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    text = json.dumps(problem, ensure_ascii=False)
    for word in words:
        assert word in text, text
    return problem


@pytest.fixture
def api(alice):
    return client_for(alice)


@pytest.mark.parametrize(
    "rules",
    [
        condition(value=NUL),
        condition(field=NUL),
        condition(operator=NUL),
        condition(value=SURROGATE),
        condition(field=SURROGATE),
        condition(value=["x", SURROGATE]),
    ],
)
@pytest.mark.parametrize("url", ["/api/v1/segments/estimate/", "/api/v1/segments/"])
def test_rules_with_unstorable_text_are_refused(api, url, rules):
    body = json.dumps({"name": "Unusual", "rules": rules})
    problem = assert_refused(send(api, "POST", url, body))
    assert any(word in json.dumps(problem) for word in ("NUL", "surrogate")), problem


@pytest.mark.parametrize("depth", [40, 1_100, 5_000])
@pytest.mark.parametrize("url", ["/api/v1/segments/estimate/", "/api/v1/segments/"])
def test_rules_nested_a_thousand_levels_are_refused(api, url, depth):
    body = '{"name":"Deep","rules":' + nested_json(depth) + "}"
    assert_refused(send(api, "POST", url, body), f"more than {MAX_DEPTH} deep")


def test_rules_nested_just_too_deep_for_groups_say_how_deep_groups_go(api):
    body = '{"rules":' + nested_json(8) + "}"
    assert_refused(send(api, "POST", "/api/v1/segments/estimate/", body), "at most 5 deep")


def test_changing_a_segment_refuses_them_too(api):
    segment = SegmentFactory()
    body = json.dumps({"rules": condition(value=NUL)})
    assert_refused(send(api, "PATCH", f"/api/v1/segments/{segment.pk}/", body), "NUL")
    body = json.dumps({"description": SURROGATE})
    assert_refused(send(api, "PATCH", f"/api/v1/segments/{segment.pk}/", body), "surrogate")


@pytest.mark.parametrize(
    "record",
    [
        {"customer_id": SURROGATE},
        {"customer_id": "c", "email": SURROGATE},
        {"customer_id": "c", "attributes": {SURROGATE: "x"}},
        {"customer_id": "c", "attributes": {"tier": SURROGATE}},
    ],
)
def test_a_bulk_upsert_with_a_lone_surrogate_is_refused_naming_where(api, record):
    body = json.dumps({"records": [{"customer_id": "fine"}, record]})
    assert_refused(send(api, "POST", "/api/v1/profiles/bulk/", body), "surrogate", "records.1")


def test_a_bulk_upsert_nested_a_thousand_levels_is_refused(api):
    value = "[" * 1_200 + "]" * 1_200
    body = '{"records":[{"customer_id":"c","attributes":{"k":' + value + "}}]}"
    assert_refused(send(api, "POST", "/api/v1/profiles/bulk/", body), "deep")


def test_nul_in_a_bulk_upsert_rejects_that_record_only(api):
    body = json.dumps({"records": [{"customer_id": "fine"}, {"customer_id": "c", "email": NUL}]})
    response = send(api, "POST", "/api/v1/profiles/bulk/", body)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["result"] for result in results] == ["created", "rejected"]
    assert "NUL" in results[1]["reason"]


@pytest.mark.parametrize("url", ["/api/v1/profiles/a%00b/", "/api/v1/fields/a%00b/"])
def test_a_look_up_by_a_name_with_nul_is_refused(api, url):
    ProfileFactory(customer_id="ab")
    assert_refused(api.get(url), "NUL", "path")


@pytest.mark.parametrize(
    "url", ["/api/v1/profiles/?customer_id=a%00b", "/api/v1/exports/?name=a%00b"]
)
def test_a_search_with_nul_is_refused(api, url):
    assert_refused(api.get(url), "NUL", "query")


@pytest.mark.parametrize("page", ["/profiles/", "/exports/", "/segments/"])
def test_the_pages_searches_with_nul_say_what_is_wrong(client, alice, page):
    client.force_login(alice)
    response = client.get(page + "?q=a%00b")
    assert response.status_code == 400
    assert "NUL character (%00)" in response.content.decode()


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        (json.dumps(condition(value=NUL)), "NUL character"),
        (json.dumps(condition(field=SURROGATE)), "lone surrogate"),
        (nested_json(1_100), "at most 5 deep"),
    ],
)
@pytest.mark.parametrize("view", ["segments:create", "segments:estimate"])
def test_the_segment_builder_says_what_is_wrong(client, alice, view, rules, reason):
    client.force_login(alice)
    data = {"name": "Unusual", "description": "", "rules": rules}
    response = client.post(reverse(view), data)
    assert response.status_code == 200
    assert reason in response.content.decode()


def _operations(api) -> list[tuple[str, str, dict]]:
    document = api.get("/api/v1/openapi.json").json()
    methods = ("get", "post", "put", "patch", "delete")
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in methods
    ]


def _url(path: str, value: str = "1") -> str:
    parts = path.split("/")
    return "/".join(value if part.startswith("{") else part for part in parts)


def test_every_operation_refuses_these_inputs_with_a_problem(api):
    """Fuzzing with the inputs the document forbids: each parameter, then the body. A path
    with a NUL, a query parameter with one, and each of these bodies is refused (400), or the
    object is not found first (404); an object named by a surrogate's bytes is not found."""
    operations = _operations(api)
    assert len(operations) > 30
    bodies = ['{"x": "a\\ud800b"}', nested_json(1_100), "[" * 5_000 + "]" * 5_000]
    answers = []
    for method, path, operation in operations:
        calls = [(_url(path, value), "{}", "%00" in value) for value in IN_ADDRESS if "{" in path]
        calls += [
            (f"{_url(path)}?{parameter['name']}=a%00b", "{}", True)
            for parameter in operation.get("parameters", [])
            if parameter["in"] == "query"
        ]
        if "requestBody" in operation:
            calls += [(_url(path), body, True) for body in bodies]
        for url, body, refused in calls:
            answers.append((method, url, body[:20], refused, send(api, method, url, body)))
    assert [answer[:3] for answer in answers if answer[4].status_code >= 500] == []
    for method, url, body, refused, response in answers:
        assert response["Content-Type"] == "application/problem+json", (method, url, body)
        if refused:
            assert response.status_code in (400, 404), (method, url, body, response.status_code)
