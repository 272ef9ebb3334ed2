"""The served document is valid OpenAPI 3.1, and the answers the API tests receive are checked
against it (tests/api/conftest.py)."""

from __future__ import annotations

import json

from django.http import HttpResponse
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.api.openapi_conformance import Document


def keywords(node, found=None) -> set[str]:
    """Every keyword of every schema object in ``node`` (and other keys: enough here)."""
    found = set() if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, bool):
                found.add(key)
            keywords(value, found)
    elif isinstance(node, list):
        for value in node:
            keywords(value, found)
    return found


def test_the_served_document_is_valid_openapi_3_1(openapi_document):
    document = openapi_document.document

    assert document["openapi"].startswith("3.1")
    assert list(OpenAPIV31SpecValidator(document).iter_errors()) == []


def test_null_is_said_as_a_json_schema_type(openapi_document):
    document = openapi_document.document
    page = document["components"]["schemas"]["PaginatedSegmentList"]["properties"]

    assert "nullable" not in keywords(document)  # OpenAPI 3.0's keyword, which 3.1 ignores
    assert page["next"]["type"] == ["string", "null"]
    assert page["previous"]["type"] == ["string", "null"]


def page_document(next_schema: dict) -> Document:
    ok = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}}
    return Document(
        {
            "paths": {"/api/v1/things/{id}/": {"get": {"responses": {"200": ok}}}},
            "components": {
                "schemas": {"Page": {"type": "object", "properties": {"next": next_schema}}}
            },
        }
    )


def test_the_check_refuses_what_the_document_does_not_allow():
    answer = HttpResponse(json.dumps({"next": None}), content_type="application/json")
    as_openapi_3_0 = page_document({"type": "string", "nullable": True})
    as_openapi_3_1 = page_document({"type": ["string", "null"]})

    assert as_openapi_3_0.problems("GET", "/api/v1/things/7/", answer) == [
        "GET /api/v1/things/7/ answered 200: at $.next: None is not of type 'string'"
    ]
    assert as_openapi_3_1.problems("GET", "/api/v1/things/7/", answer) == []
    assert as_openapi_3_1.problems("GET", "/api/v1/things/7/", HttpResponse(status=404)) == [
        "GET /api/v1/things/7/ answered 404: the status code is not documented (200)"
    ]
    assert as_openapi_3_1.problems(
        "GET", "/api/v1/things/7/", HttpResponse("{}", content_type="text/html")
    ) == ["GET /api/v1/things/7/ answered 200: text/html is not documented (application/json)"]
