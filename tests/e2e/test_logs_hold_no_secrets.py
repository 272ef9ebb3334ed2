"""End to end, with JSON logs at DEBUG: a real worker refreshes a Campaign Monitor token and
pushes to both fakes; no stored secret (OAuth tokens, the client secret, an API key, the
encryption key) appears in any log line of the worker or of this process."""

from __future__ import annotations

import json
import logging
import time

import pytest

from connections.models import Connection
from core import crypto
from exports import services
from exports.models import ExportRun
from tests.e2e import test_export_runs as export_runs
from tests.e2e.test_export_runs import (
    _connection,
    autopilot_list_id,
    cm_list_id,
    finished,
    make_export,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
people = export_runs.people  # the fixture: 200 deliverable profiles and three to skip

ACCESS_TOKEN = "e2e-access-7Qz1LmT0kens"
REFRESH_TOKEN = "e2e-refresh-9Wx4Refr3sh"
API_KEY = "e2e-autopilot-key-5Yv8ApiK3y"
CLIENT_ID = "demo-client-id"
CLIENT_SECRET = "demo-client-secret"


@pytest.fixture
def json_debug_logs(monkeypatch, e2e_settings):
    """Before the worker starts: it reads these from its environment."""
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    e2e_settings.CAMPAIGN_MONITOR_CLIENT_ID = CLIENT_ID
    e2e_settings.CAMPAIGN_MONITOR_CLIENT_SECRET = CLIENT_SECRET


def test_no_secret_reaches_a_log_line(
    json_debug_logs, worker, cm_fake, autopilot_fake, people, alice, caplog
):
    caplog.set_level(logging.DEBUG)
    cm_fake.seed(
        accounts=[
            {
                "id": "demo",
                "tokens": [
                    {
                        "access_token": ACCESS_TOKEN,
                        "refresh_token": REFRESH_TOKEN,
                        "expires_in": 3600,
                    }
                ],
            }
        ]
    )
    # Expired: the worker refreshes it with the client secret before the first call.
    cm = _connection(
        "campaign_monitor",
        {
            "access_token": ACCESS_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "expires_in": 3600,
            "expires_at": time.time() - 60,
        },
        alice,
    )
    autopilot_fake.seed(accounts=[{"id": "demo", "api_keys": [API_KEY]}])
    autopilot = _connection("autopilot", {"api_key": API_KEY}, alice)
    cm_run = finished(
        services.run_request(export=make_export(cm, cm_list_id(cm_fake), people, alice), user=alice)
    )
    autopilot_run = finished(
        services.run_request(
            export=make_export(autopilot, autopilot_list_id(autopilot_fake), people, alice),
            user=alice,
        )
    )
    log = worker.log()
    assert cm_run.status == ExportRun.Status.SUCCEEDED, log[-3000:]
    assert autopilot_run.status == ExportRun.Status.SUCCEEDED, log[-3000:]

    refreshed = crypto.decrypt_json(Connection.objects.get(pk=cm.pk).encrypted_credentials)
    assert refreshed["access_token"] != ACCESS_TOKEN, "the token was not refreshed"
    secrets = {
        ACCESS_TOKEN,
        REFRESH_TOKEN,
        refreshed["access_token"],
        refreshed["refresh_token"],
        CLIENT_SECRET,
        API_KEY,
        *worker.env["FIELD_ENCRYPTION_KEY"].split(","),
        Connection.objects.get(pk=cm.pk).encrypted_credentials[:40],
    }
    json_lines = [line for line in log.splitlines() if line.startswith("{")]
    # The run really logged, as JSON, with its context.
    run_lines = [json.loads(line) for line in json_lines if f'"run_id": {cm_run.pk}' in line]
    assert run_lines, log[-3000:]
    assert {line["export_id"] for line in run_lines} == {cm_run.export_id}
    assert {line["connection_id"] for line in run_lines} == {cm.pk}
    assert any(line["level"] == "DEBUG" for line in map(json.loads, json_lines))

    this_process = "\n".join(
        record.getMessage() + (caplog.text if record.exc_info else "") for record in caplog.records
    )
    leaked = {
        secret
        for secret in secrets
        if secret and (secret in log or secret in this_process or secret in caplog.text)
    }
    assert leaked == set()
