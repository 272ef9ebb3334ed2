"""Every API endpoint and method, called as anonymous, viewer, contributor, administrator and
with a revoked token.

The endpoints are read from the URL conf: a new one without a row in ACCESS fails
``test_every_endpoint_is_in_the_access_table``.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts.tokens import token_create, token_revoke
from exports.models import Erasure, Exclusion, Export, ExportRun
from segments.models import ConsentRecord
from sources.models import Source
from tests.api.conftest import client_for
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory, SegmentFactory
from webhooks import services as webhook_services

pytestmark = pytest.mark.django_db

ANYONE, VIEWER, CONTRIBUTOR, ADMINISTRATOR = 0, 1, 2, 3
ROLE_RANK = {"charlie": VIEWER, "bob": CONTRIBUTOR, "alice": ADMINISTRATOR}

# (url name, method): lowest role allowed
ACCESS = {
    ("api:schema", "get"): ANYONE,
    ("api:docs", "get"): ANYONE,
    ("api:redoc", "get"): ANYONE,
    ("api:segment-list", "get"): VIEWER,
    ("api:segment-list", "post"): CONTRIBUTOR,
    ("api:segment-detail", "get"): VIEWER,
    ("api:segment-detail", "put"): CONTRIBUTOR,
    ("api:segment-detail", "patch"): CONTRIBUTOR,
    ("api:segment-detail", "delete"): CONTRIBUTOR,
    ("api:segment-estimate", "post"): CONTRIBUTOR,
    ("api:segment-refresh", "post"): CONTRIBUTOR,
    ("api:segment-members", "get"): VIEWER,
    ("api:segment-members-csv", "get"): VIEWER,
    ("api:field-list", "get"): VIEWER,
    ("api:field-detail", "get"): VIEWER,
    ("api:connection-list", "get"): CONTRIBUTOR,
    ("api:connection-detail", "get"): CONTRIBUTOR,
    ("api:connection-test", "post"): ADMINISTRATOR,
    ("api:connection-consent-read", "get"): ADMINISTRATOR,
    ("api:connection-consent-read", "post"): ADMINISTRATOR,
    ("api:consent-record-list", "get"): VIEWER,
    ("api:consent-record-detail", "get"): VIEWER,
    ("api:export-list", "get"): VIEWER,
    ("api:export-list", "post"): CONTRIBUTOR,
    ("api:export-detail", "get"): VIEWER,
    ("api:export-detail", "put"): CONTRIBUTOR,
    ("api:export-detail", "patch"): CONTRIBUTOR,
    ("api:export-detail", "delete"): CONTRIBUTOR,
    ("api:export-run", "post"): CONTRIBUTOR,
    ("api:export-cancel", "post"): CONTRIBUTOR,
    ("api:export-schedule", "post"): CONTRIBUTOR,
    ("api:export-resend", "post"): CONTRIBUTOR,
    ("api:export-preview", "get"): VIEWER,
    ("api:run-list", "get"): VIEWER,
    ("api:run-detail", "get"): VIEWER,
    ("api:run-failures", "get"): VIEWER,
    ("api:run-failures-csv", "get"): VIEWER,
    ("api:run-retry", "post"): CONTRIBUTOR,
    ("api:run-approve", "post"): CONTRIBUTOR,
    ("api:run-discard", "post"): CONTRIBUTOR,
    ("api:profile-list", "get"): VIEWER,
    ("api:profile-detail", "get"): VIEWER,
    ("api:profile-bulk", "post"): ADMINISTRATOR,
    ("api:profile-erase", "post"): ADMINISTRATOR,
    ("api:profile-erasure", "get"): ADMINISTRATOR,
    ("api:webhook-list", "get"): ADMINISTRATOR,
    ("api:webhook-list", "post"): ADMINISTRATOR,
    ("api:webhook-detail", "get"): ADMINISTRATOR,
    ("api:webhook-detail", "put"): ADMINISTRATOR,
    ("api:webhook-detail", "patch"): ADMINISTRATOR,
    ("api:webhook-detail", "delete"): ADMINISTRATOR,
    ("api:webhook-enable", "post"): ADMINISTRATOR,
    ("api:webhook-disable", "post"): ADMINISTRATOR,
    ("api:webhook-rotate-secret", "post"): ADMINISTRATOR,
    ("api:webhook-test", "post"): ADMINISTRATOR,
    ("api:webhook-deliveries", "get"): ADMINISTRATOR,
    ("api:exclusion-list", "get"): ADMINISTRATOR,
    ("api:exclusion-list", "post"): ADMINISTRATOR,
    ("api:exclusion-bulk", "post"): ADMINISTRATOR,
    ("api:exclusion-consent-rule", "get"): ADMINISTRATOR,
    ("api:exclusion-consent-rule", "put"): ADMINISTRATOR,
    ("api:exclusion-detail", "get"): ADMINISTRATOR,
    ("api:exclusion-detail", "put"): ADMINISTRATOR,
    ("api:exclusion-detail", "patch"): ADMINISTRATOR,
    ("api:exclusion-detail", "delete"): ADMINISTRATOR,
    ("api:source-list", "get"): VIEWER,
    ("api:source-list", "post"): ADMINISTRATOR,
    ("api:source-detail", "get"): VIEWER,
    ("api:source-detail", "put"): ADMINISTRATOR,
    ("api:source-detail", "patch"): ADMINISTRATOR,
    ("api:source-detail", "delete"): ADMINISTRATOR,
    ("api:source-test", "post"): ADMINISTRATOR,
    ("api:source-run", "post"): ADMINISTRATOR,
    ("api:source-runs", "get"): ADMINISTRATOR,
}


def api_patterns() -> list[URLPattern]:
    """Every named pattern under the ``api`` namespace."""
    (api,) = [
        pattern
        for pattern in get_resolver().url_patterns
        if isinstance(pattern, URLResolver) and pattern.namespace == "api"
    ]
    return [p for p in api.url_patterns if isinstance(p, URLPattern) and p.name]


def api_endpoints() -> set[tuple[str, str]]:
    """(url name, method) of every API endpoint."""
    endpoints = set()
    for pattern in api_patterns():
        view = pattern.callback
        actions = getattr(view, "actions", None)  # a viewset: {method: action}
        if actions:
            # DRF adds "head" to a viewset's actions on its first GET: not an endpoint of its own.
            methods = set(actions) - {"head"}
        else:
            methods = {
                method
                for method in view.cls.http_method_names
                if method not in ("head", "options") and hasattr(view.cls, method)
            }
        endpoints |= {(f"api:{pattern.name}", method) for method in methods}
    return endpoints


def test_every_endpoint_is_in_the_access_table():
    missing = api_endpoints() - set(ACCESS)
    assert not missing, f"add these endpoints to ACCESS: {sorted(missing)}"
    assert not set(ACCESS) - api_endpoints(), "ACCESS lists endpoints that no longer exist"


@pytest.fixture
def objects():
    segment = SegmentFactory()
    profile = ProfileFactory()
    connection = ConnectionFactory(who_can_use="administrators_and_contributors")
    export = Export.objects.create(display_name="Newsletter", connection=connection, list_id="l1")
    export.segments.set([segment])
    run = ExportRun.objects.create(export=export, trigger="schedule", status="succeeded")
    endpoint, _secret = webhook_services.endpoint_create(
        url="https://hooks.example.com/in", description="", events=["segment.refreshed"], user=None
    )
    return {
        "field": "email",
        "webhook": endpoint.pk,
        "segment": segment.pk,
        "connection": connection.pk,
        "export": export.pk,
        "run": run.pk,
        "profile": profile.customer_id,
        "erasure": Erasure.objects.create(erased_by="email", address_hash="a" * 64).pk,
        "exclusion": Exclusion.objects.create(kind="address", value="kept@example.org").pk,
        "consent": ConsentRecord.objects.create(
            email="gone@example.org", state="unsubscribed", connection=connection
        ).pk,
        "source": Source.objects.create(
            name="Matrix",
            kind="file",
            connection_settings={"path": "/nonexistent/people.parquet"},
            mapping={"customer_id": "id"},
        ).pk,
    }


def url_for(name: str, objects: dict) -> str:
    """The URL of ``name``, with the fixture's object of its kind where it takes one."""
    (pattern,) = [p for p in api_patterns() if f"api:{p.name}" == name]
    kind = name.split(":")[1].split("-")[0]
    # A parameter named after a kind of object (erasure_id) takes that one.
    kwargs = {
        key: objects.get(key.removesuffix("_id"), objects[kind])
        for key in pattern.pattern.regex.groupindex
    }
    return reverse(name, kwargs=kwargs)


BODIES = {
    ("api:segment-list", "post"): {"name": "New", "rules": {"match": "all", "conditions": []}},
    ("api:export-schedule", "post"): {"enabled": False},
    ("api:profile-bulk", "post"): {"records": [{"customer_id": "matrix"}]},
    ("api:profile-erase", "post"): {"customer_id": "nobody"},
    ("api:webhook-list", "post"): {
        "url": "https://hooks.example.com/new",
        "events": ["export_run.finished"],
    },
    ("api:exclusion-list", "post"): {"kind": "address", "value": "new@example.org"},
    ("api:exclusion-bulk", "post"): {"kind": "domain", "values": ["example.net"]},
    ("api:exclusion-consent-rule", "put"): {"scope": "same_connection"},
    ("api:exclusion-detail", "put"): {"note": "Asked by legal"},
    ("api:webhook-detail", "put"): {
        "url": "https://hooks.example.com/in",
        "events": ["export_run.finished"],
    },
    ("api:source-list", "post"): {
        "name": "Matrix file",
        "kind": "file",
        "connection_settings": {"path": "/nonexistent/other.parquet"},
        "mapping": {"customer_id": "id"},
    },
    ("api:source-detail", "put"): {
        "name": "Matrix",
        "kind": "file",
        "connection_settings": {"path": "/nonexistent/people.parquet"},
        "mapping": {"customer_id": "id"},
    },
}


def call(client: APIClient, name: str, method: str, objects: dict):
    return getattr(client, method)(
        url_for(name, objects), BODIES.get((name, method), {}), format="json"
    )


@pytest.mark.parametrize(("name", "method"), sorted(ACCESS))
def test_anonymous_callers_get_401(name, method, objects):
    response = call(APIClient(), name, method, objects)
    if ACCESS[name, method] == ANYONE:
        assert response.status_code == 200
    else:
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("name", "method"), sorted(ACCESS))
def test_a_revoked_token_gets_401(name, method, objects, alice):
    if ACCESS[name, method] == ANYONE:
        pytest.skip("public")
    token, raw = token_create(user=alice, name="old")
    token_revoke(token=token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = call(client, name, method, objects)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


@pytest.mark.parametrize(("name", "method"), sorted(ACCESS))
@pytest.mark.parametrize("username", ["charlie", "bob", "alice"])
def test_each_role_gets_exactly_what_it_may(name, method, username, objects, request):
    client = client_for(request.getfixturevalue(username))
    response = call(client, name, method, objects)
    assert response.status_code < 500, response.content[:300]
    if ROLE_RANK[username] >= ACCESS[name, method]:
        assert response.status_code not in (401, 403), response.content[:300]
    else:
        assert response.status_code == 403, response.content[:300]
        assert response["Content-Type"] == "application/problem+json"
        body = response.json()
        assert "Ask an administrator" in body["detail"] or "Only administrators" in body["detail"]
