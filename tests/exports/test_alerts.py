from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from connections import services as connection_services
from connections.models import Connection
from connections.types.base import AuthRevoked, Permanent
from core import crypto
from exports import alerts, engine, services, tasks
from exports.models import Alert, ExportRun
from segments.services import segment_refresh
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db

Status = ExportRun.Status
Trigger = ExportRun.Trigger


@pytest.fixture(autouse=True)
def mail_settings(settings, alice, bob):
    settings.SITE_URL = "https://relay.example.com/"
    settings.EXPORT_BACKOFF_BASE_SECONDS = 0.001
    settings.EXPORT_BACKOFF_MAX_SECONDS = 0.01
    settings.EXPORT_ALERT_FAILED_SHARE = 0.05
    settings.EXPORT_ALERT_MIN_FAILED = 10
    alice.email = "alice@example.com"
    alice.save()
    bob.email = "bob@example.com"
    bob.save()


@pytest.fixture
def export(make_export, everyone, bob):
    """An export that bob (a contributor) created."""
    export = make_export(everyone)
    export.created_by = bob
    export.save()
    return export


def committed():
    """Alerts are queued when what they report is committed: the test's own transaction never
    commits, so the callbacks run as the block ends."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def run_now(export, user=None) -> ExportRun:
    for segment in export.segments.all():  # take in the profiles the test made
        segment_refresh(segment_id=segment.pk)
    run = services.run_request(export=export, user=user)
    with committed():
        return engine.execute(run.pk)


def finished(export, status, trigger=Trigger.SCHEDULE, **fields) -> ExportRun:
    """A run that just ended, and what the engine does then."""
    run = ExportRun.objects.create(
        export=export, status=status, trigger=trigger, finished_at=timezone.now(), **fields
    )
    with committed():
        services.run_after_finish(run.pk)
    export.refresh_from_db()
    return run


def fail(export, trigger=Trigger.SCHEDULE) -> ExportRun:
    return finished(export, Status.FAILED, trigger, last_error="The list was deleted.")


def a_day_passes() -> None:
    Alert.objects.update(sent_at=timezone.now() - timedelta(days=1))


# A run that failed -------------------------------------------------------------------------------


def test_a_failed_run_emails_the_creator_and_the_administrators(backend, export):
    ProfileFactory(email="ann@example.com")
    backend.errors = [Permanent("Autopilot refused the request: the list does not exist.")]

    run = run_now(export, user=None)

    assert run.status == Status.FAILED
    [message] = mail.outbox
    assert message.to == ["alice@example.com", "bob@example.com"]
    assert message.subject == "Export “Newsletter” failed"
    assert "the list does not exist" in message.body
    assert f"https://relay.example.com/exports/{export.pk}/" in message.body
    alert = Alert.objects.get()
    assert (alert.export, alert.kind) == (export, Alert.Kind.RUN_FAILED)
    assert alert.recipients == ["alice@example.com", "bob@example.com"]


def test_two_failures_the_same_day_send_one_mail_and_the_next_day_another(export):
    fail(export, Trigger.USER)
    fail(export, Trigger.USER)
    assert len(mail.outbox) == 1

    a_day_passes()
    fail(export, Trigger.USER)
    assert len(mail.outbox) == 2
    assert Alert.objects.filter(export=export).count() == 2


def test_each_export_has_its_own_daily_alert(export, make_export, everyone):
    other = make_export(everyone, display_name="Promotions")
    fail(export, Trigger.USER)
    fail(other, Trigger.USER)
    assert [message.subject for message in mail.outbox] == [
        "Export “Newsletter” failed",
        "Export “Promotions” failed",
    ]


def test_inactive_users_and_users_without_an_address_get_nothing(export, alice, bob):
    alice.is_active = False
    alice.save()
    bob.email = ""
    bob.save()
    fail(export, Trigger.USER)
    assert mail.outbox == []
    assert not Alert.objects.exists()


def test_superusers_are_administrators_too(export, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    fail(export, Trigger.USER)
    assert mail.outbox[0].to == ["alice@example.com", "bob@example.com", "root@example.com"]


def test_a_mail_that_cannot_be_sent_is_logged_and_tried_again_next_time(
    export, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", broken)
    fail(export, Trigger.USER)
    assert "Could not send the run_failed alert" in caplog.text
    assert not Alert.objects.exists()

    monkeypatch.undo()
    fail(export, Trigger.USER)
    assert len(mail.outbox) == 1


def test_an_alert_that_breaks_never_changes_how_the_run_ended(backend, export, monkeypatch):
    def broken(run_id, **kwargs):
        raise RuntimeError("alerts are broken")

    monkeypatch.setattr(alerts, "run_finished", broken)
    ProfileFactory(email="ann@example.com")
    run = run_now(export, user=None)
    assert (run.status, run.sent) == (Status.SUCCEEDED, 1)


# Records the service refused ---------------------------------------------------------------------


def test_many_refused_records_send_an_alert(backend, export):
    for number in range(10):
        ProfileFactory(email=f"ok{number}@example.com")
        ProfileFactory(email=f"reject{number}@example.com")

    run = run_now(export, user=None)

    assert (run.status, run.failed) == (Status.COMPLETED_WITH_WARNINGS, 10)
    [message] = mail.outbox
    assert message.subject == "Export “Newsletter”: the service refused 10 profiles"
    assert "refused 10 profiles of 20 (50%)" in message.body
    assert Alert.objects.get().kind == Alert.Kind.RUN_REFUSED


def test_refused_records_below_the_share_send_nothing(export):
    finished(export, Status.COMPLETED_WITH_WARNINGS, to_send=1000, sent=951, failed=49)
    assert mail.outbox == []
    finished(export, Status.COMPLETED_WITH_WARNINGS, to_send=1000, sent=950, failed=50)
    assert len(mail.outbox) == 1


def test_refused_records_below_the_minimum_send_nothing(export):
    finished(export, Status.COMPLETED_WITH_WARNINGS, to_send=20, sent=11, failed=9)
    assert mail.outbox == []
    assert not Alert.objects.exists()


def test_profiles_we_skipped_ourselves_do_not_count(backend, export, settings):
    settings.EXPORT_ALERT_MIN_FAILED = 1
    ProfileFactory(email="ann@example.com")
    ProfileFactory(email="not-an-address")
    ProfileFactory(email="")

    run = run_now(export, user=None)

    assert (run.status, run.failed, run.skipped) == (Status.SUCCEEDED, 0, 2)
    assert mail.outbox == []


def test_successful_skipped_and_cancelled_runs_send_nothing(export):
    finished(export, Status.SUCCEEDED, to_send=10, sent=10)
    finished(export, Status.SKIPPED, last_error="Segment not ready")
    finished(export, Status.CANCELLED)
    assert mail.outbox == []


# The schedule pauses itself ----------------------------------------------------------------------


def test_three_failed_scheduled_runs_in_a_row_pause_the_schedule_and_say_so(export):
    fail(export)
    fail(export)
    assert export.schedule_enabled
    assert len(mail.outbox) == 1  # the second failure fell under the same day's alert

    fail(export)

    assert not export.schedule_enabled
    assert "the last 3 scheduled runs failed in a row" in export.schedule_paused_reason
    assert "The list was deleted." in export.schedule_paused_reason
    # The pause is announced even though the export had its alert today.
    assert len(mail.outbox) == 2
    message = mail.outbox[-1]
    assert message.subject == "Export “Newsletter” failed and its schedule is paused"
    assert export.schedule_paused_reason in message.body
    assert "switch on “Run on schedule” on the export page" in message.body
    assert Alert.objects.filter(kind=Alert.Kind.SCHEDULE_PAUSED).count() == 1


def test_a_failure_started_by_a_user_does_not_count_toward_the_three(export):
    fail(export)
    fail(export)
    fail(export, Trigger.USER)
    assert export.schedule_enabled

    fail(export)
    assert not export.schedule_enabled


def test_a_run_that_delivers_starts_the_count_again(export):
    fail(export)
    fail(export)
    finished(export, Status.COMPLETED_WITH_WARNINGS, Trigger.USER, to_send=10, sent=9, failed=1)
    fail(export)
    fail(export)
    assert export.schedule_enabled

    fail(export)
    assert not export.schedule_enabled


def test_skipped_runs_neither_count_nor_start_the_count_again(export):
    fail(export)
    finished(export, Status.SKIPPED, last_error="Segment not ready")
    fail(export)
    assert export.schedule_enabled
    fail(export)
    assert not export.schedule_enabled


def test_an_export_whose_schedule_is_already_off_is_not_paused_again(export):
    services.export_set_schedule(export=export, enabled=False)
    for _time in range(3):
        fail(export)
    assert export.schedule_paused_reason == ""
    assert len(mail.outbox) == 1
    assert not Alert.objects.filter(kind=Alert.Kind.SCHEDULE_PAUSED).exists()


def test_turning_the_schedule_on_again_forgets_why_it_paused(export):
    for _time in range(3):
        fail(export)
    assert export.schedule_paused_reason

    services.export_set_schedule(export=export, enabled=True)

    export.refresh_from_db()
    assert export.schedule_enabled
    assert export.schedule_paused_reason == ""


def test_the_export_page_says_why_the_schedule_paused(export, as_alice):
    for _time in range(3):
        fail(export)
    response = as_alice.get(reverse("exports:detail", args=[export.pk]))
    assert export.schedule_paused_reason in response.content.decode()


# A connection that needs re-authentication -------------------------------------------------------


def test_a_connection_that_needs_re_authentication_sends_one_mail_naming_its_exports(
    export, make_export, everyone, connection
):
    make_export(everyone, display_name="Promotions")
    connection.encrypted_credentials = crypto.encrypt_json({"api_key": "very-secret-key"})
    connection.save()

    with committed():
        connection_services.connection_record_auth_failure(
            connection_id=connection.pk, message="The API key was revoked."
        )
    with committed():
        connection_services.connection_record_auth_failure(
            connection_id=connection.pk, message="The API key was revoked."
        )

    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_REAUTHENTICATION
    [message] = mail.outbox
    assert message.to == ["alice@example.com", "bob@example.com"]
    assert message.subject == "Connection “Autopilot” needs re-authentication"
    assert "The API key was revoked." in message.body
    assert f"https://relay.example.com/connections/{connection.pk}/edit/" in message.body
    assert "The 2 exports that use this connection:" in message.body
    assert "- Newsletter: https://relay.example.com/exports/" in message.body
    assert "- Promotions: https://relay.example.com/exports/" in message.body
    assert "very-secret-key" not in message.body
    assert connection.encrypted_credentials not in message.body
    alert = Alert.objects.get()
    assert (alert.connection, alert.export, alert.kind) == (
        connection,
        None,
        Alert.Kind.NEEDS_REAUTHENTICATION,
    )


def test_the_re_authentication_alert_says_what_the_service_refused_once(connection):
    revoked = (
        "Autopilot rejected the stored API key (Provided autopilotapikey not valid.). Edit "
        "the connection and enter a new API key."
    )
    with committed():
        connection_services.connection_record_auth_failure(
            connection_id=connection.pk, message=revoked
        )

    [message] = mail.outbox
    assert message.body.count(revoked) == 1
    assert message.body.count("no longer accepts") == 0
    assert "Until then, the exports that use the connection “Autopilot” cannot run." in (
        message.body
    )


def test_a_re_authentication_alert_without_the_services_words_says_what_to_do(connection):
    Connection.objects.filter(pk=connection.pk).update(last_error="")
    alerts.connection_needs_reauthentication(connection.pk)

    [message] = mail.outbox
    assert message.body.count("no longer accepts the credentials") == 1
    assert "an administrator must edit the connection and authenticate again" in message.body


def test_a_connection_that_needs_re_authentication_again_the_next_day_alerts_again(
    export, connection
):
    with committed():
        connection_services.connection_record_auth_failure(connection_id=connection.pk, message="x")
    Connection.objects.filter(pk=connection.pk).update(status=Connection.Status.HEALTHY)
    with committed():
        connection_services.connection_record_auth_failure(connection_id=connection.pk, message="x")
    assert len(mail.outbox) == 1  # the same day

    a_day_passes()
    Connection.objects.filter(pk=connection.pk).update(status=Connection.Status.HEALTHY)
    with committed():
        connection_services.connection_record_auth_failure(connection_id=connection.pk, message="x")
    assert len(mail.outbox) == 2


def test_an_alert_that_breaks_never_hides_that_the_connection_needs_re_authentication(
    connection, monkeypatch, caplog
):
    def broken(connection_id):
        raise RuntimeError("alerts are broken")

    monkeypatch.setattr(alerts, "connection_needs_reauthentication", broken)

    with committed():
        connection_services.connection_record_auth_failure(connection_id=connection.pk, message="x")

    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_REAUTHENTICATION
    assert "alerts are broken" in caplog.text


def test_a_run_refused_for_its_credentials_alerts_about_the_connection(backend, export):
    ProfileFactory(email="ann@example.com")
    backend.errors = [AuthRevoked("Autopilot no longer accepts the API key.")]

    run = run_now(export, user=None)

    assert run.status == Status.FAILED
    assert [message.subject for message in mail.outbox] == [
        "Connection “Autopilot” needs re-authentication",
        "Export “Newsletter” failed",
    ]


@pytest.mark.django_db(transaction=True)  # the pool thread sees what the test wrote
def test_a_key_revoked_mid_run_is_recorded_once_and_its_alert_goes_from_a_task(
    backend, export, connection, monkeypatch
):
    """The client that met the refusal records it (from a batch's pool thread); the engine
    does not record it again, and no mail goes from the pool thread: a task is queued."""
    ProfileFactory(email="p1@example.com")
    recorded, queued = [], []
    record = connection_services.connection_record_auth_failure

    def recording(**kwargs):
        recorded.append(kwargs["connection_id"])
        record(**kwargs)

    monkeypatch.setattr(connection_services, "connection_record_auth_failure", recording)
    monkeypatch.setattr(
        tasks.alert_connection_needs_reauthentication, "delay", lambda *args: queued.append(args)
    )

    def revoked_at_the_service(recording_backend):
        connection_services.connection_record_auth_failure(
            connection_id=connection.pk, message="The API key was revoked."
        )
        raise AuthRevoked("The API key was revoked.")

    backend.before_push = revoked_at_the_service
    segment_refresh(segment_id=export.segments.get().pk)
    services.run_request(export=export)  # committed at once: the (eager) task runs it
    run = ExportRun.objects.get(export=export)

    assert run.status == Status.FAILED
    assert recorded == [connection.pk]
    assert queued == [(connection.pk,)]
    assert not [m for m in mail.outbox if "re-authentication" in m.subject]
