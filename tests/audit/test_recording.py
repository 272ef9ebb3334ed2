"""Each change point records an entry: who, what, before/after of the non-secret fields."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

import audit
from accounts import tokens
from accounts.roles import Role
from accounts.services import (
    user_create_or_update,
    user_deactivate,
    user_reactivate,
    user_set_role,
)
from audit.actions import AuditAction
from audit.labels import ACTIONS
from audit.models import AuditEntry
from connections import services as connection_services
from core import crypto
from exports import services as export_services
from exports.models import ExportRun
from exports.schedule import schedule_save
from exports.selectors import export_settings
from segments import services as segment_services
from tests.connections.factories import ACCESS_TOKEN, API_KEY, REFRESH_TOKEN, ConnectionFactory
from tests.factories import SegmentFactory
from webhooks import events as webhook_events
from webhooks.events import EVENT_CHOICES

pytestmark = pytest.mark.django_db

SECRETS = [API_KEY, ACCESS_TOKEN, REFRESH_TOKEN, "fresh-api-key-9d2b", "oauth-access-new"]


def _everything_recorded() -> str:
    return json.dumps(list(AuditEntry.objects.values()), default=str)


def test_connection_changes_are_recorded_without_any_secret(alice, entries):
    connection = connection_services.connection_create(
        kind="autopilot",
        display_name="Journeys",
        who_can_use="administrators",
        encrypted_credentials=crypto.encrypt_json({"api_key": API_KEY}),
        consent_given_by=alice,
        consent_given_at=timezone.now(),
        created_by=alice,
        add_creator_as_export_user=True,
    )
    connection_services.connection_update(
        connection=connection, display_name="Journeys EU", who_can_use="administrators"
    )
    connection_services.connection_update(
        connection=connection,
        display_name="Journeys EU",
        who_can_use="administrators",
        credentials={"api_key": "fresh-api-key-9d2b"},
    )
    connection_services.connection_set_encrypted_credentials(
        connection=connection,
        encrypted_credentials=crypto.encrypt_json({"access_token": "oauth-access-new"}),
    )
    assert connection_services.credentials_reencrypt_all() == 1
    connection_services.connection_delete(connection=connection)

    assert [action for action, _type, _who in entries(object_type="connection")] == [
        "connection.created",
        "connection.updated",
        "connection.credentials_replaced",
        "connection.reauthenticated",
        "connection.keys_rotated",
        "connection.deleted",
    ]
    created = AuditEntry.objects.get(action="connection.created")
    assert created.after["display_name"] == "Journeys"
    assert created.after["export_users"] == [alice.pk]
    assert created.object_label == "Journeys"
    renamed = AuditEntry.objects.get(action="connection.updated")
    assert (renamed.before, renamed.after) == (
        {"display_name": "Journeys"},
        {"display_name": "Journeys EU"},
    )
    deleted = AuditEntry.objects.get(action="connection.deleted")
    assert deleted.before["display_name"] == "Journeys EU" and deleted.after is None

    recorded = _everything_recorded()
    assert "encrypted_credentials" not in recorded
    for secret in SECRETS:
        assert secret not in recorded
    assert connection.encrypted_credentials[:40] not in recorded


def test_export_changes_and_runs_are_recorded(alice, bob, make_export, everyone, entries):
    export = make_export(everyone)
    values = export_settings(export)
    created = export_services.export_save(export=None, user=alice, **values)
    values["display_name"] = "Weekly"
    export_services.export_save(export=created, user=alice, **values)
    copy = export_services.export_duplicate(export=created, user=alice)
    export_services.export_set_schedule(export=created, enabled=False)
    run = export_services.run_request(export=created, user=bob)
    export_services.run_cancel(run=run)
    ExportRun.objects.filter(pk=run.pk).update(status=ExportRun.Status.CANCELLED)
    scheduled = export_services.run_request(export=created)
    ExportRun.objects.filter(pk=scheduled.pk).update(status=ExportRun.Status.SUCCEEDED)
    export_services.export_detach(export=created)
    copy_id = str(copy.pk)
    export_services.export_delete(export=copy)

    assert entries(object_type="export", object_id=str(created.pk)) == [
        ("export.created", "export", "system"),
        ("export.updated", "export", "system"),
        ("export.schedule_changed", "export", "system"),
        ("run.started", "export", "bob"),
        ("run.cancelled", "export", "system"),
        ("run.started", "export", "schedule"),
        ("export.detached", "export", "system"),
    ]
    updated = AuditEntry.objects.get(action="export.updated")
    assert updated.after == {"display_name": "Weekly"}
    started = AuditEntry.objects.filter(action="run.started").order_by("id").first()
    assert started.actor == bob
    assert started.after == {"run": run.pk, "trigger": "user", "retry_of": None}
    assert entries(object_type="export", object_id=copy_id) == [
        ("export.duplicated", "export", "system"),
        ("export.deleted", "export", "system"),
    ]


def test_a_schedule_that_pauses_itself_is_recorded_as_the_systems(make_export, everyone, entries):
    export = make_export(everyone, schedule_enabled=True)
    runs = [
        ExportRun.objects.create(
            export=export, status="failed", trigger="schedule", finished_at=timezone.now()
        )
        for _time in range(3)
    ]
    assert export_services.export_pause_schedule_if_failing(runs[-1])
    entry = AuditEntry.objects.get(action="export.schedule_paused")
    assert entry.actor_label == "system"
    assert entry.before["schedule_enabled"] is True and entry.after["schedule_enabled"] is False


def test_segment_and_schedule_changes_are_recorded(alice, entries):
    segment = segment_services.segment_save(
        segment=None,
        name="VIP",
        description="",
        rules={
            "match": "all",
            "conditions": [{"field": "email", "operator": "contains", "value": "@example.com"}],
        },
        user=alice,
    )
    segment_services.segment_save(
        segment=segment, name="VIP", description="Best", rules=segment.rules, user=alice
    )
    segment_services.segment_delete(segment=segment)
    schedule_save(
        enabled=True, frequency="daily", weekdays=[], time_zone="UTC", times=["06:00"], user=alice
    )
    assert [
        action for action, _t, _w in entries(object_type__in=["segment", "refreshschedule"])
    ] == [
        "segment.created",
        "segment.updated",
        "segment.deleted",
        "schedule.updated",
    ]
    assert AuditEntry.objects.get(action="segment.updated").after == {"description": "Best"}
    assert AuditEntry.objects.get(action="schedule.updated").after["times"] == ["06:00"]


def test_user_role_and_token_changes_are_recorded(alice, bob, entries):
    user_set_role(user=bob, role=Role.VIEWER)
    user_deactivate(user=bob)
    token, raw = tokens.token_create(user=alice, name="CI")
    tokens.token_revoke(token=token)
    role = AuditEntry.objects.filter(action="user.role_changed", object_id=str(bob.pk))[0]
    assert (role.before, role.after) == ({"role": "contributor"}, {"role": "viewer"})
    deactivated = AuditEntry.objects.get(action="user.deactivated")
    assert deactivated.object_id == str(bob.pk) and deactivated.after == {"is_active": False}
    user_reactivate(user=bob)
    assert AuditEntry.objects.filter(action="user.reactivated", object_id=str(bob.pk)).exists()
    assert entries(object_type="apitoken") == [
        ("api_token.created", "apitoken", "system"),
        ("api_token.revoked", "apitoken", "system"),
    ]
    recorded = _everything_recorded()
    assert raw not in recorded and token.digest not in recorded
    assert alice.password not in recorded
    assert '"password"' not in recorded


def test_a_request_records_its_user_and_address(as_alice, bob):
    data = {"first_name": "Bob", "last_name": "", "email": "bob@example.com", "role": "viewer"}
    as_alice.post(reverse("users:edit", args=[bob.pk]), data, REMOTE_ADDR="203.0.113.9")
    entry = AuditEntry.objects.get(action="user.updated", object_id=str(bob.pk))
    assert entry.actor_label == "alice" and entry.remote_address == "203.0.113.9"
    assert entry.after == {"first_name": "Bob", "email": "bob@example.com"}


def test_outside_a_request_the_actor_is_the_system(db):
    user_create_or_update(username="erin", role=Role.VIEWER)
    entry = AuditEntry.objects.get(action="user.created")
    assert entry.actor is None and entry.actor_label == "system" and entry.remote_address is None
    assert entry.object_label == "erin"


def test_every_recorded_action_has_a_label():
    """A new change point must name its action in audit/labels.py, so that the page shows it."""
    recorded = set()
    for path in Path(settings.BASE_DIR).glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        recorded |= set(re.findall(r'"([a-z_]+\.[a-z_]+)"', path.read_text()))
    # Webhook event names look like actions but are not recorded here.
    recorded -= {event for event, _label in EVENT_CHOICES} | {webhook_events.TEST}
    actions = {
        name for name in recorded if name.split(".")[0] in {a.split(".")[0] for a in ACTIONS}
    }
    assert actions - set(ACTIONS) == set()
    assert "run.started" in actions


def test_an_action_the_enum_does_not_know_is_refused_and_nothing_is_recorded():
    with pytest.raises(ValueError, match=re.escape("segment.renamed")):
        audit.record("segment.renamed", object_type="segment", object_id=1)
    assert not AuditEntry.objects.exists()


def test_an_action_is_stored_as_its_value_and_shown_with_its_label():
    entry = audit.record(AuditAction.CONNECTION_KEYS_ROTATED, object_type="connection")
    entry = AuditEntry.objects.get(pk=entry.pk)
    assert (entry.action, entry.action_label) == (
        "connection.keys_rotated",
        "Encryption keys rotated",
    )


def production_modules():
    for path in Path(settings.BASE_DIR).glob("*/**/*.py"):
        if not {".venv", "tests", "fakes", "bench"} & set(path.parts):
            yield path


def test_every_change_point_names_its_action_with_the_enum():
    """Not a string: ``audit.record`` refuses one the enum does not know, but only when that
    change point runs; the enum's name is checked when the module is imported."""
    strings = []
    calls = 0
    for path in production_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
            ):
                calls += 1
                strings += [
                    f"{path.name}:{node.lineno}"
                    for part in ast.walk(node.args[0])
                    if isinstance(part, ast.Constant) and isinstance(part.value, str)
                ]
    assert calls > 30
    assert strings == []


def test_snapshots_leave_out_declared_secrets_and_secret_looking_names():
    connection = ConnectionFactory.build()
    values = audit.snapshot(connection)
    assert "encrypted_credentials" not in values and "display_name" in values
    segment = SegmentFactory.build()
    assert "name" in audit.snapshot(segment)


def test_inviting_resetting_and_setting_a_password_are_recorded(as_alice, bob, settings):
    settings.SITE_URL = "http://testserver"
    bob.email = "bob@example.com"
    bob.save()
    as_alice.post(
        reverse("users:add"), {"username": "dana", "email": "dana@example.com", "role": "viewer"}
    )
    as_alice.post(reverse("users:reset_password", args=[bob.pk]))
    recorded = [
        (entry.action, entry.object_label, entry.actor_label)
        for entry in AuditEntry.objects.filter(actor_label="alice").order_by("id")
    ]
    assert recorded == [
        ("user.created", "dana", "alice"),
        ("user.role_changed", "dana", "alice"),
        ("user.password_reset_sent", "bob", "alice"),
    ]
