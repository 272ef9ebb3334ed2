"""Every URL, visited as anonymous, viewer, contributor and administrator.

A new URL must be added to ACCESS, so that no view ships without a role check.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.roles import Role
from accounts.services import user_create_or_update
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db

ANYONE, VIEWER, CONTRIBUTOR, ADMINISTRATOR = 0, 1, 2, 3
# No login, but a token of its own (METRICS_TOKEN): a user's session does not open it.
BEARER_TOKEN = -1
ROLE_RANK = {"charlie": VIEWER, "bob": CONTRIBUTOR, "alice": ADMINISTRATOR}

# url name: (method, lowest role allowed)
ACCESS = {
    "home": ("get", VIEWER),
    "set_language": ("post", ANYONE),
    "accounts:login": ("get", ANYONE),
    "accounts:logout": ("post", ANYONE),
    "sso:start": ("get", ANYONE),
    "sso:callback": ("get", ANYONE),
    "users:list": ("get", ADMINISTRATOR),
    "users:add": ("get", ADMINISTRATOR),
    "users:edit": ("get", ADMINISTRATOR),
    "users:deactivate": ("post", ADMINISTRATOR),
    "users:reactivate": ("post", ADMINISTRATOR),
    "users:reset_password": ("post", ADMINISTRATOR),
    "users:set_password": ("get", ANYONE),
    "audit:list": ("get", ADMINISTRATOR),
    "audit:csv": ("get", ADMINISTRATOR),
    "accounts:tokens": ("get", VIEWER),
    "accounts:token_revoke": ("post", VIEWER),
    "segments:list": ("get", VIEWER),
    "segments:detail": ("get", VIEWER),
    "segments:members": ("get", VIEWER),
    "segments:members_csv": ("get", VIEWER),
    "segments:create": ("get", CONTRIBUTOR),
    "segments:edit": ("get", CONTRIBUTOR),
    "segments:estimate": ("post", CONTRIBUTOR),
    "segments:refresh": ("post", CONTRIBUTOR),
    "segments:refresh_all": ("post", CONTRIBUTOR),
    "segments:delete": ("get", CONTRIBUTOR),
    "segments:set_active": ("post", CONTRIBUTOR),
    "segments:set_static": ("post", CONTRIBUTOR),
    "profiles:list": ("get", VIEWER),
    "profiles:detail": ("get", VIEWER),
    "profiles:import": ("get", ADMINISTRATOR),
    "profiles:import_detail": ("get", ADMINISTRATOR),
    "profiles:import_problems_csv": ("get", ADMINISTRATOR),
    "connections:list": ("get", ADMINISTRATOR),
    "connections:choose_type": ("get", ADMINISTRATOR),
    "connections:setup": ("get", ADMINISTRATOR),
    "connections:setup_finish": ("get", ADMINISTRATOR),
    "connections:authorize": ("post", ADMINISTRATOR),
    "connections:oauth_callback": ("get", ADMINISTRATOR),
    "connections:edit": ("get", ADMINISTRATOR),
    "connections:test": ("post", ADMINISTRATOR),
    "connections:consent_read": ("post", ADMINISTRATOR),
    "connections:delete": ("get", ADMINISTRATOR),
    "sources:list": ("get", VIEWER),
    "sources:add": ("get", ADMINISTRATOR),
    "sources:detail": ("get", ADMINISTRATOR),
    "sources:edit": ("get", ADMINISTRATOR),
    "sources:test": ("post", ADMINISTRATOR),
    "sources:run_now": ("post", ADMINISTRATOR),
    "sources:delete": ("get", ADMINISTRATOR),
    "sources:run": ("get", ADMINISTRATOR),
    "sources:approve": ("post", ADMINISTRATOR),
    "exports:list": ("get", VIEWER),
    "exports:detail": ("get", VIEWER),
    "exports:run_detail": ("get", VIEWER),
    "exports:run_failures_csv": ("get", VIEWER),
    "exports:create": ("get", CONTRIBUTOR),
    "exports:edit": ("get", CONTRIBUTOR),
    "exports:destination_lists": ("get", CONTRIBUTOR),
    "exports:destination_fields": ("post", CONTRIBUTOR),
    "exports:run": ("post", CONTRIBUTOR),
    "exports:run_all": ("post", CONTRIBUTOR),
    "exports:cancel": ("post", CONTRIBUTOR),
    "exports:duplicate": ("post", CONTRIBUTOR),
    "exports:schedule": ("post", CONTRIBUTOR),
    "exports:detach": ("post", CONTRIBUTOR),
    "exports:delete": ("get", CONTRIBUTOR),
    "exports:preview": ("get", VIEWER),
    "exports:resend": ("post", CONTRIBUTOR),
    "exports:run_retry": ("post", CONTRIBUTOR),
    "exports:run_approve": ("post", CONTRIBUTOR),
    "exports:run_discard": ("post", CONTRIBUTOR),
    "system:status": ("get", VIEWER),
    "system:status_detail": ("get", VIEWER),
    "system:schedule": ("get", VIEWER),
    "system:safety": ("get", VIEWER),
    "webhooks:list": ("get", ADMINISTRATOR),
    "webhooks:create": ("get", ADMINISTRATOR),
    "webhooks:detail": ("get", ADMINISTRATOR),
    "webhooks:edit": ("get", ADMINISTRATOR),
    "webhooks:enable": ("post", ADMINISTRATOR),
    "webhooks:disable": ("post", ADMINISTRATOR),
    "webhooks:rotate_secret": ("post", ADMINISTRATOR),
    "webhooks:test": ("post", ADMINISTRATOR),
    "webhooks:delete": ("get", ADMINISTRATOR),
    "exclusions:list": ("get", ADMINISTRATOR),
    "exclusions:add": ("post", ADMINISTRATOR),
    "exclusions:edit": ("get", ADMINISTRATOR),
    "exclusions:delete": ("get", ADMINISTRATOR),
    "exclusions:consent_rule": ("post", ADMINISTRATOR),
    "ops:healthz": ("get", ANYONE),
    "ops:readyz": ("get", ANYONE),
    "ops:metrics": ("get", BEARER_TOKEN),
}


#: URL namespaces with a role matrix of their own (tests/api/test_api_role_matrix.py).
OWN_MATRIX = ("api:",)


def all_url_names(resolver=None, namespace="") -> set[str]:
    names = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= all_url_names(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(namespace + pattern.name)
    return names


def test_every_url_is_in_the_access_table():
    missing = {name for name in all_url_names() if not name.startswith(OWN_MATRIX)} - set(ACCESS)
    assert not missing, f"add these URLs to ACCESS: {sorted(missing)}"


@pytest.fixture
def urls(settings, request):
    from accounts.tokens import token_create
    from exports.models import Exclusion, Export, ExportRun
    from ops import heartbeat
    from segments.models import ProfileImport
    from sources.models import Source, SourceRun
    from webhooks.models import Endpoint

    # "Test connection" makes a real request: let it fail fast on a closed local port.
    settings.AUTOPILOT_API_URL = "http://127.0.0.1:9/v1"
    settings.METRICS_TOKEN = "metrics-token-for-the-matrix"
    heartbeat.record(heartbeat.BEAT_KEY)
    heartbeat.record(heartbeat.WORKER_KEY)
    connection = ConnectionFactory()
    segment = SegmentFactory()
    profile = ProfileFactory()
    profile_import = ProfileImport.objects.create(file_name="x.csv")
    # An export on a connection shared with contributors: they may change and run it.
    export = Export.objects.create(
        display_name="Newsletter",
        connection=ConnectionFactory(who_can_use="administrators_and_contributors"),
        list_id="list-1",
    )
    export.segments.set([segment])
    run = ExportRun.objects.create(export=export, trigger="schedule", status="succeeded")
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/in", events=[])
    exclusion = Exclusion.objects.create(kind="domain", value="example.net")
    source = Source.objects.create(
        name="Matrix",
        kind="file",
        connection_settings={"path": "/nonexistent/people.parquet"},
        mapping={"customer_id": "id"},
    )
    source_run = SourceRun.objects.create(source=source, sync_mode="full", status="failed")
    dave = user_create_or_update(username="dave", role=Role.VIEWER, email="dave@example.com")[0]
    # Each user revokes only their own tokens: the one of the user visiting.
    username = getattr(request.node, "callspec", None) and request.node.callspec.params.get(
        "username"
    )
    token_owner = request.getfixturevalue(username) if username else request.getfixturevalue("bob")
    token, _raw = token_create(user=token_owner, name="matrix")
    ids = {
        "accounts:token_revoke": [token.pk],
        "users:edit": [dave.pk],
        "users:deactivate": [dave.pk],
        "users:reactivate": [dave.pk],
        "users:reset_password": [dave.pk],
        "users:set_password": ["MQ", "expired-token"],
        "segments:detail": [segment.pk],
        "segments:members": [segment.pk],
        "segments:members_csv": [segment.pk],
        "segments:edit": [segment.pk],
        "segments:refresh": [segment.pk],
        "segments:delete": [segment.pk],
        "segments:set_active": [segment.pk],
        "segments:set_static": [segment.pk],
        "profiles:detail": [profile.pk],
        "profiles:import_detail": [profile_import.pk],
        "profiles:import_problems_csv": [profile_import.pk],
        "connections:setup": ["autopilot"],
        "connections:setup_finish": ["expired-setup"],
        "connections:edit": [connection.pk],
        "connections:test": [connection.pk],
        "connections:consent_read": [connection.pk],
        "connections:delete": [connection.pk],
        "exports:detail": [export.pk],
        "exports:edit": [export.pk],
        "exports:run": [export.pk],
        "exports:cancel": [export.pk],
        "exports:duplicate": [export.pk],
        "exports:schedule": [export.pk],
        "exports:detach": [export.pk],
        "exports:delete": [export.pk],
        "exports:preview": [export.pk],
        "exports:resend": [export.pk],
        "exports:run_retry": [run.pk],
        "exports:run_approve": [run.pk],
        "exports:run_discard": [run.pk],
        "exports:run_detail": [run.pk],
        "exports:run_failures_csv": [run.pk],
        "system:status_detail": ["export", export.pk],
        "exclusions:add": ["segment"],
        "exclusions:edit": [exclusion.pk],
        "exclusions:delete": [exclusion.pk],
        "sources:add": ["file"],
        **{
            f"sources:{name}": [source.pk]
            for name in ("detail", "edit", "test", "run_now", "delete")
        },
        "sources:run": [source_run.pk],
        "sources:approve": [source_run.pk],
        **{
            f"webhooks:{name}": [endpoint.pk]
            for name in ("detail", "edit", "enable", "disable", "rotate_secret", "test", "delete")
        },
    }
    return {name: reverse(name, args=ids.get(name, [])) for name in ACCESS}


@pytest.mark.parametrize("name", sorted(ACCESS))
def test_anonymous_users_are_sent_to_the_login_page(client, urls, name):
    method, lowest = ACCESS[name]
    response = getattr(client, method)(urls[name])
    if lowest == BEARER_TOKEN:
        assert response.status_code == 401
    elif lowest == ANYONE:
        assert response.status_code in (200, 302)
    else:
        assert response.status_code == 302
        assert response.url.startswith(reverse("accounts:login"))


@pytest.mark.parametrize("name", sorted(ACCESS))
@pytest.mark.parametrize("username", ["charlie", "bob", "alice"])
def test_each_role_gets_exactly_what_it_may(client, urls, name, username, request):
    user = request.getfixturevalue(username)
    client.force_login(user)
    method, lowest = ACCESS[name]
    response = getattr(client, method)(urls[name], {"rules": "{}"} if method == "post" else None)
    if lowest == BEARER_TOKEN:
        assert response.status_code == 401
    elif ROLE_RANK[username] >= lowest:
        assert response.status_code in (200, 302), response.content[:300]
    else:
        assert response.status_code == 403
        assert b"You are not allowed to do this" in response.content
        assert (
            b"Ask an administrator" in response.content
            or b"Only administrators" in response.content
        )
