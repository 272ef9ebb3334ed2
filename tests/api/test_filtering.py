"""Filters refuse what the document does not allow rather than ignore it."""

from __future__ import annotations

import pytest

from tests.factories import SegmentFactory


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/segments/?name=",
        "/api/v1/segments/?status=",
        "/api/v1/exports/?display_name=",
        "/api/v1/exports/?segment=",
        "/api/v1/profiles/?email=",
        "/api/v1/connections/?kind=",
        "/api/v1/runs/?status=",
    ],
)
def test_a_filter_given_empty_is_refused(api_alice, query):
    SegmentFactory(name="Gold members")

    response = api_alice.get(query)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    parameter = query.split("?")[1].removesuffix("=")
    assert response.json()["errors"] == [
        {"field": parameter, "message": "Give a value, or leave the parameter out."}
    ]


def test_a_text_filter_is_documented_as_never_empty(openapi_document):
    parameters = openapi_document.document["paths"]["/api/v1/segments/"]["get"]["parameters"]

    (name,) = [parameter for parameter in parameters if parameter["name"] == "name"]
    assert name["schema"]["minLength"] == 1
