from __future__ import annotations

import threading
import time

import pytest
from django.utils import timezone

from connections.models import Connection
from connections.services import credentials_encrypt
from connections.types.base import Backend, PushResult, Record, RecordFailure
from exports.models import Export
from fakes.testing import running_fake
from segments.catalogue import refresh_field_catalogue
from segments.services import segment_refresh
from tests.factories import ProfileFactory, SegmentFactory


class RecordingBackend(Backend):
    """A destination in memory: remembers every record per list, refuses "reject" addresses,
    and raises the errors queued in ``errors`` before answering."""

    label = "Recording"
    batch_size = 3
    removal_batch_size = 3
    rate_limit = None
    opted_out_codes = frozenset({"206"})

    def __init__(self):
        self.lists: dict[str, dict[str, Record]] = {}
        self.errors: list[Exception] = []
        self.calls = 0
        self.pushed: list[str] = []
        self.removed: list[str] = []
        self.lock = threading.Lock()
        self.before_push = None
        self.refusing = True  # False: the service now takes the "reject" addresses

    def prepare(self, list_id, fields, options=None):
        pass

    def push(self, list_id, batch):
        self._check_batch(batch)
        with self.lock:
            self.calls += 1
            if self.before_push:
                self.before_push(self)
            if self.errors:
                raise self.errors.pop(0)
            failures = [
                RecordFailure(record.email, "1", "Invalid Email Address")
                for record in batch
                if "reject" in record.email and self.refusing
            ] + [
                RecordFailure(record.email, "206", "Subscriber Is Unsubscribed")
                for record in batch
                if "unsubscribed" in record.email
            ]
            refused = {failure.email for failure in failures}
            for record in batch:
                if record.email not in refused:
                    self.lists.setdefault(list_id, {})[record.email] = record
                    self.pushed.append(record.email)
        return PushResult(accepted=len(batch) - len(failures), failures=failures)

    def remove(self, list_id, emails):
        self._check_batch(emails, self.removal_batch_size)
        with self.lock:
            self.calls += 1
            for email in emails:
                self.lists.get(list_id, {}).pop(email, None)
                self.removed.append(email)
        return PushResult(accepted=len(emails))


@pytest.fixture
def backend(monkeypatch):
    recording = RecordingBackend()
    monkeypatch.setattr("exports.engine.backend_for", lambda connection: recording)
    return recording


@pytest.fixture
def connection(db, alice):
    return Connection.objects.create(
        kind="autopilot",
        display_name="Autopilot",
        consent_given_by=alice,
        consent_given_at=timezone.now(),
        created_by=alice,
    )


@pytest.fixture
def make_export(connection, alice):
    def make(*segments, **fields):
        for segment in segments:
            segment_refresh(segment_id=segment.pk)
        export = Export.objects.create(
            display_name=fields.pop("display_name", "Newsletter"),
            connection=connection,
            list_id="list-1",
            first_name_field="first_name",
            last_name_field="last_name",
            created_by=alice,
            **fields,
        )
        export.segments.set(segments)
        return export

    return make


@pytest.fixture
def everyone():
    return SegmentFactory(
        name="Everyone",
        rules={
            "match": "all",
            "conditions": [{"field": "customer_id", "operator": "is_not_empty"}],
        },
    )


# The Campaign Monitor fake, for the field mapping's tests -------------------------------------

PEOPLE = 200
TYPES = {"plan": "text", "ltv": "number", "renewal": "date", "has_app": "boolean", "tier": "text"}


@pytest.fixture
def cm(settings):
    with running_fake("campaign_monitor") as fake:
        settings.CAMPAIGN_MONITOR_API_URL = fake.base_url
        settings.CAMPAIGN_MONITOR_TOKEN_URL = fake.root_url + "/oauth/token"
        yield fake


@pytest.fixture
def cm_connection(cm, alice):
    token = {"access_token": "fields-access", "refresh_token": "fields-refresh", "expires_in": 3600}
    cm.seed(accounts=[{"id": "demo", "tokens": [token]}])
    return Connection.objects.create(
        kind="campaign_monitor",
        display_name="CM",
        who_can_use=Connection.Audience.ADMINISTRATORS_AND_CONTRIBUTORS,
        consent_given_by=alice,
        consent_given_at=timezone.now(),
        created_by=alice,
        encrypted_credentials=credentials_encrypt({**token, "expires_at": time.time() + 3600}),
    )


@pytest.fixture
def cm_list_id(cm) -> str:
    return next(iter(cm.state()["clients"].values()))["list_ids"][0]


def attributes(number: int) -> dict:
    return {
        "plan": f"Plan {number}",
        "ltv": number + 0.5,
        "renewal": f"2027-03-{number % 28 + 1:02d}",
        "has_app": "true" if number % 2 else "false",
        "tier": "Gold" if number % 3 else "Silver",
    }


@pytest.fixture
def customers():
    """200 profiles with five attributes of different types (``attributes``), catalogued."""
    for number in range(PEOPLE):
        ProfileFactory(
            customer_id=f"c{number:03d}",
            email=f"person{number}@example.com",
            first_name=f"First{number}",
            last_name="Last",
            attributes=attributes(number),
        )
    refresh_field_catalogue(TYPES)
    segment = SegmentFactory(
        rules={"match": "all", "conditions": [{"field": "customer_id", "operator": "is_not_empty"}]}
    )
    segment_refresh(segment_id=segment.pk)
    return segment
