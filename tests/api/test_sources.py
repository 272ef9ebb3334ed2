"""Sources through the API: CRUD (the password write-only), test, run, runs; names and status
only for contributors and viewers."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from segments.models import Profile
from sources.models import Source, SourceRun
from tests.sources.places import people

pytestmark = pytest.mark.django_db
SOURCES = "/api/v1/sources"


def body(place, **overrides):
    return {
        "name": "Warehouse",
        "kind": place.kind,
        "connection_settings": place.connection_settings,
        "password": "hunter2-secret",
        "read_table": place.read_table,
        "mapping": {
            "customer_id": "customer",
            "email": "email",
            "attributes": {"score": "score"},
        },
        "sync_mode": "incremental",
        "cursor_column": "updated_at",
        **overrides,
    }


def test_an_administrator_adds_tests_runs_and_reads_a_source(
    api_alice, postgresql_place, django_capture_on_commit_callbacks
):
    postgresql_place.write(people(5))
    created = api_alice.post(SOURCES, body(postgresql_place), format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert "password" not in data and data["has_password"] is True
    assert data["mapping"]["attributes"] == {"score": "score"}
    source = Source.objects.get()
    assert "hunter2" not in source.encrypted_secrets

    tested = api_alice.post(f"{SOURCES}/{source.pk}/test")
    assert tested.status_code == 200 and tested.json()["passed"] is True

    with django_capture_on_commit_callbacks(execute=True):
        queued = api_alice.post(f"{SOURCES}/{source.pk}/run")
    assert queued.status_code == 202
    assert Profile.objects.count() == 5
    runs = api_alice.get(f"{SOURCES}/{source.pk}/runs").json()["results"]
    assert [(run["status"], run["created_count"]) for run in runs] == [("succeeded", 5)]


def test_a_second_run_while_one_is_queued_is_a_conflict(api_alice, postgresql_place):
    postgresql_place.write(people(2))
    source_id = api_alice.post(SOURCES, body(postgresql_place), format="json").json()["id"]
    assert api_alice.post(f"{SOURCES}/{source_id}/run").status_code == 202
    refused = api_alice.post(f"{SOURCES}/{source_id}/run")
    assert refused.status_code == 409
    assert SourceRun.objects.count() == 1


def test_a_run_while_one_waits_for_approval_is_a_conflict_that_names_it(
    api_alice, postgresql_place
):
    postgresql_place.write(people(2))
    source_id = api_alice.post(SOURCES, body(postgresql_place), format="json").json()["id"]
    waiting = SourceRun.objects.create(
        source_id=source_id, sync_mode="full", status="awaiting_approval", removal_pending=500
    )
    refused = api_alice.post(f"{SOURCES}/{source_id}/run")
    assert refused.status_code == 409
    assert f"Run #{waiting.pk} of this source is waiting for approval" in refused.json()["detail"]


def test_the_forms_checks_hold_in_the_api(api_alice, postgresql_place):
    refused = api_alice.post(
        SOURCES,
        body(postgresql_place, cursor_column="", mapping={"customer_id": "customer"}),
        format="json",
    )
    assert refused.status_code == 400
    assert "cursor column" in str(refused.json())


def test_changing_a_source_keeps_the_password_and_is_audited(api_alice, mysql_place):
    source_id = api_alice.post(SOURCES, body(mysql_place), format="json").json()["id"]
    changed = api_alice.patch(
        f"{SOURCES}/{source_id}", {"name": "Shop", "sync_mode": "full"}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["name"] == "Shop" and changed.json()["has_password"] is True
    source = Source.objects.get()
    from sources.services import kind_for

    assert kind_for(source).secrets == {"password": "hunter2-secret"}
    assert AuditEntry.objects.filter(action="source.updated").exists()


@pytest.mark.parametrize("client_name", ["api_bob", "api_charlie"])
def test_contributors_and_viewers_read_names_and_status_only(
    request, client_name, api_alice, parquet_place
):
    parquet_place.write(people(2))
    source_id = api_alice.post(SOURCES, body(parquet_place), format="json").json()["id"]
    client = request.getfixturevalue(client_name)
    listed = client.get(SOURCES).json()["results"]
    assert listed == [{"id": source_id, "name": "Warehouse", "status": "never_run"}]
    assert client.post(f"{SOURCES}/{source_id}/run").status_code == 403
    assert client.post(f"{SOURCES}/{source_id}/test").status_code == 403
    assert client.get(f"{SOURCES}/{source_id}/runs").status_code == 403
    assert client.delete(f"{SOURCES}/{source_id}").status_code == 403
    assert client.post(SOURCES, body(parquet_place), format="json").status_code == 403
