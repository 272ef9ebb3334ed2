"""A Campaign Monitor token that expires in the middle of a run, against the fake: the run
refreshes it once and holds its other batches meanwhile, so that the calls it costs are counted
(issue 12, item 3)."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from connections.models import Connection
from connections.services import credentials_encrypt
from connections.types.campaign_monitor.backend import CampaignMonitorBackend
from exports import engine, services
from exports.models import Export, ExportRun
from fakes.testing import running_fake
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = pytest.mark.django_db(transaction=True)

IMPORTS = "POST /subscribers/{listid}/import.json"
TOKEN = "POST /oauth/token"
BATCHES = 20
IN_FLIGHT = 16
#: Of the first 16 batches in flight, this many are answered before the token expires.
ANSWERED_BEFORE_EXPIRY = 8
#: How long the service takes for an import, and for a token refresh. An expired token is
#: refused at once, so the first refusals come back while the other imports are still in flight.
IMPORT_SECONDS = 0.1
REFRESH_SECONDS = 0.3


@pytest.fixture
def cm(settings):
    with running_fake("campaign_monitor") as fake:
        settings.CAMPAIGN_MONITOR_API_URL = fake.base_url
        settings.CAMPAIGN_MONITOR_TOKEN_URL = f"{fake.root_url}/oauth/token"
        yield fake


@pytest.fixture
def slow_service(cm, monkeypatch):
    """Imports take ``IMPORT_SECONDS`` and refreshes ``REFRESH_SECONDS`` at the fake."""
    app = cm.app

    def slowly(handler, seconds):
        def handle(*args):
            time.sleep(seconds)
            return handler(*args)

        return handle

    monkeypatch.setattr(app, "import_subscribers", slowly(app.import_subscribers, IMPORT_SECONDS))
    monkeypatch.setattr(app, "exchange_token", slowly(app.exchange_token, REFRESH_SECONDS))


@pytest.fixture
def twenty_batches(settings, monkeypatch):
    """Batches of 10, 16 of them in flight from the first one, as in the issue's walk."""
    settings.EXPORT_CONCURRENCY = IN_FLIGHT
    monkeypatch.setattr(engine, "INITIAL", IN_FLIGHT)
    monkeypatch.setattr(CampaignMonitorBackend, "batch_size", 10)
    for number in range(BATCHES * 10):
        ProfileFactory(email=f"p{number}@example.com")
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "email", "operator": "is_not_empty"}]}
    )
    segment_refresh(segment_id=segment.pk)
    return segment


def cm_export(cm, segment, user) -> Export:
    cm.seed(
        accounts=[
            {
                "id": "demo",
                "tokens": [{"access_token": "old", "refresh_token": "refresh", "expires_in": 3600}],
            }
        ]
    )
    connection = Connection.objects.create(
        kind="campaign_monitor",
        display_name="Campaign Monitor",
        consent_given_by=user,
        consent_given_at=timezone.now(),
        created_by=user,
        encrypted_credentials=credentials_encrypt(
            {
                "access_token": "old",
                "refresh_token": "refresh",
                "expires_in": 3600,
                "expires_at": time.time() + 3600,
            }
        ),
    )
    client = next(iter(cm.state()["clients"].values()))
    export = Export.objects.create(
        display_name="Newsletter",
        connection=connection,
        list_id=client["list_ids"][0],
        created_by=user,
    )
    export.segments.set([segment])
    return export


def test_a_token_expiring_mid_run_is_refreshed_once_while_the_other_batches_wait(
    cm, slow_service, twenty_batches, alice
):
    export = cm_export(cm, twenty_batches, alice)
    # The run reads the list's custom fields first (one request), then sends 16 imports.
    cm.configure(expire_tokens_after=1 + ANSWERED_BEFORE_EXPIRY)

    run = services.run_request(export=export, user=alice)  # runs here: tasks are eager
    run.refresh_from_db()

    assert (run.status, run.sent) == (ExportRun.Status.SUCCEEDED, BATCHES * 10)
    stats = cm.state(summary=True)["stats"]
    calls, refused = stats["requests_by_endpoint"], stats["responses_by_status"]["401"]
    # Each batch refused for the expired token was sent again once, after the one refresh.
    assert (calls[IMPORTS] - BATCHES, calls[TOKEN]) == (refused, 1)
    # Only batches already sent when the token expired were refused: those that would have
    # gone out while it was being refreshed (with the old token, before this fix) waited.
    assert 1 <= refused <= IN_FLIGHT - ANSWERED_BEFORE_EXPIRY
    connection = Connection.objects.get(pk=export.connection_id)
    assert connection.status == Connection.Status.HEALTHY
