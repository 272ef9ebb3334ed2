"""In production (``SECURE_SSL_REDIRECT``) the API answers a plain-HTTP request with an error,
not the redirect the pages get: a client would follow it, token and body and all."""

from __future__ import annotations

import pytest

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def test_a_plain_http_api_call_is_refused_not_redirected(production_https, alice):
    response = client_for(alice).post(
        "/api/v1/segments/", {"name": "x", "rules": {}}, format="json", secure=False
    )
    assert response.status_code == 403
    assert "Location" not in response
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 403
    assert problem["instance"] == "/api/v1/segments/"
    assert "HTTPS" in problem["detail"]
    assert "https://testserver/api/v1/segments/" in problem["detail"]


def test_the_refusal_is_in_the_callers_language(production_https, alice):
    response = client_for(alice).get("/api/v1/segments/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 403
    assert response.json()["title"] == "Non autorisé"
    assert "ne répond qu" in response.json()["detail"]


def test_https_behind_the_proxy_is_served(production_https, alice):
    client = client_for(alice)
    assert client.get("/api/v1/segments/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    assert client.get("/api/v1/segments/", secure=True).status_code == 200


def test_the_pages_are_still_redirected_to_https(production_https, client):
    response = client.get("/segments/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/segments/"


def test_without_the_https_redirect_plain_http_is_served(settings, alice):
    settings.SECURE_SSL_REDIRECT = False
    assert client_for(alice).get("/api/v1/segments/").status_code == 200
