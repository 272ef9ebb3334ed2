"""Who may call, how often, and what an error looks like."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import user_deactivate
from accounts.tokens import token_create
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db
SEGMENTS = "/api/v1/segments/"


def test_a_token_acts_as_its_user_and_records_when_it_was_used(bob):
    token, raw = token_create(user=bob, name="pipeline")
    client = APIClient()
    response = client.get(SEGMENTS, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_deactivated_users_token_stops_working(alice, bob):
    _token, raw = token_create(user=bob, name="pipeline")
    user_deactivate(user=bob)
    response = APIClient().get(SEGMENTS, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401


def test_an_unknown_token_is_401_in_problem_details(db):
    response = APIClient().get(SEGMENTS, HTTP_AUTHORIZATION="Bearer ar_nope")
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "urn:audience-relay:problem:not-authenticated"
    assert (body["status"], body["instance"]) == (401, SEGMENTS)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_browser_session_works_and_needs_csrf_for_writes(bob):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.get(SEGMENTS).status_code == 200
    response = client.post(SEGMENTS, {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_too_many_requests_get_429_with_retry_after(settings, api_charlie):
    settings.API_RATE_LIMIT = "3/min"
    statuses = [api_charlie.get(SEGMENTS).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api_charlie.get(SEGMENTS)
    assert int(response["Retry-After"]) > 0
    assert response.json()["type"] == "urn:audience-relay:problem:rate-limited"


def test_the_limit_is_per_token(settings, charlie):
    settings.API_RATE_LIMIT = "2/min"
    first, second = APIClient(), APIClient()
    for client in (first, second):
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=charlie, name='t')[1]}")
    assert [first.get(SEGMENTS).status_code for _ in range(3)] == [200, 200, 429]
    assert second.get(SEGMENTS).status_code == 200


def test_validation_errors_list_each_field(api_bob):
    SegmentFactory(name="Taken")
    response = api_bob.post(SEGMENTS, {"name": "Taken", "rules": {"conditions": []}}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"name", "rules"}


def test_errors_are_in_the_callers_language(api_bob):
    response = api_bob.post(
        SEGMENTS, {"name": "x", "rules": {}}, format="json", HTTP_ACCEPT_LANGUAGE="fr"
    )
    body = response.json()
    assert body["title"] == "La requête n\u2019est pas valide"
    assert body["errors"][0]["message"].startswith("Les règles n\u2019ont pas le format attendu")


def test_unknown_urls_and_methods_are_problem_details(api_bob):
    missing = api_bob.get("/api/v1/nothing-here/")
    assert (missing.status_code, missing["Content-Type"]) == (404, "application/problem+json")
    wrong = api_bob.delete("/api/v1/runs/")
    assert (wrong.status_code, wrong.json()["status"]) == (405, 405)


def test_the_openapi_document_and_the_docs_need_no_internet(client, db):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    docs = client.get("/api/v1/docs").content.decode()
    assert "swagger-ui" in docs and "http" not in docs.split("swagger-ui-bundle.js")[0][-200:]


def test_tokens_are_never_shown_again(bob):
    _token, raw = token_create(user=bob, name="pipeline")
    assert raw not in str(list(ApiToken.objects.values()))
    assert User.objects.get(pk=bob.pk).api_tokens.count() == 1


def test_a_body_over_the_upload_limit_is_413(settings, api_alice):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    records = [{"customer_id": str(n), "email": "x" * 300} for n in range(5000)]
    response = api_alice.post("/api/v1/profiles/bulk/", {"records": records}, format="json")
    assert response.status_code == 413
    assert "larger than 1 MB" in response.json()["detail"]


def test_ten_thousand_profiles_with_attributes_fit_in_one_call(api_alice):
    records = [
        {"customer_id": f"c{n}", "email": f"p{n}@example.com", "attributes": {"bio": "x" * 400}}
        for n in range(10_000)
    ]
    response = api_alice.post("/api/v1/profiles/bulk/", {"records": records}, format="json")
    assert response.json()["created"] == 10_000
