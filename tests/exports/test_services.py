"""Export services: an export's settings (``Export.SETTINGS_FIELDS``) shown, saved and copied
alike; what happens to exports when their connection is removed; the schedule pausing itself."""

from __future__ import annotations

import pytest
from django.db import models
from django.utils import timezone

from connections import services as connection_services
from connections import signals as connection_signals
from connections.models import Connection
from connections.types.base import DestinationList
from exports import alerts, services
from exports.forms import ExportForm
from exports.mapping import rows_of
from exports.models import Export, ExportRun
from exports.selectors import RunAllExport, export_settings
from tests.exports.conftest import RecordingBackend
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db

#: The fields of an export that no user sets: the database and the app keep them.
NOT_SETTINGS = {
    "id": "the row's key",
    "created_by": "who created the export",
    "created_at": "when it was created",
    "updated_at": "when it last changed",
    "schedule_paused_reason": "written when the schedule pauses itself, cleared when turned on",
    "resend_next_run": "a request for the next run, made with Resend everything",
    "inputs_run": "the last full run, which tells the next one whether anything changed",
}

#: What a duplicate does not take from its original, on purpose, and why.
NOT_COPIED = {
    **NOT_SETTINGS,  # the copy is a new row, made now by whoever duplicated; it never ran
    "display_name": "the copy is called “Copy of …”",
    "schedule_enabled": "off, so that the copy does not send the same profiles on the next refresh",
}


#: Settings whose value the form checks against a list of its own.
SETTING_VALUES = {
    "new_subscriber_status": "pending",
    "guard_max_removal_percent": 25,
    "guard_max_removals": 12_000,
    "guard_max_add_factor": 3,
}


class EveryFeature(RecordingBackend):
    """A destination with every optional feature, so that every setting can be given."""

    supports_tags = True
    new_subscriber_statuses = ("subscribed", "pending")
    consent_field_label = "Consent"


def export_fields() -> list:
    """Every field of an export, its many-to-many ones included (not the reverse relations)."""
    return [*Export._meta.concrete_fields, *Export._meta.many_to_many]


def unlike_the_default(field, connection: Connection, segment) -> object:
    """A value for the field that its default is not, so that a field left out of a copy or
    a save shows. A field of a kind this does not know yet fails here: add it."""
    if field.many_to_many:
        assert field.related_model is type(segment), field.name
        return [segment]
    if field.is_relation:
        assert field.related_model is Connection, field.name
        return connection
    if field.name in SETTING_VALUES:
        return SETTING_VALUES[field.name]
    default = field.get_default()
    if isinstance(field, models.JSONField):
        return ["a value of the original"]
    if field.choices:
        return next(value for value, _label in field.choices if value != default)
    if isinstance(field, models.BooleanField):
        return not default
    if isinstance(field, models.CharField | models.TextField):
        return f"{field.name} of the original"
    raise AssertionError(f"give {field.name} ({type(field).__name__}) a value unlike its default")


def comparable(export: Export, field) -> object:
    value = field.value_from_object(export)
    return sorted(item.pk for item in value) if field.many_to_many else value


@pytest.fixture
def original(connection, alice):
    """An export whose every setting differs from its default."""
    segment = SegmentFactory(name="Buyers")
    values = {
        field.name: unlike_the_default(field, connection, segment)
        for field in export_fields()
        if field.name in Export.SETTINGS_FIELDS
    }
    segments = values.pop("segments")
    export = Export.objects.create(created_by=alice, **values)
    export.segments.set(segments)
    return export


def test_every_field_of_an_export_is_a_setting_or_kept_by_the_app():
    """A new field must be added to ``Export.SETTINGS_FIELDS`` (shown, saved and copied) or
    here, with the reason no user sets it."""
    names = {field.name for field in export_fields()}
    assert names == set(Export.SETTINGS_FIELDS) | set(NOT_SETTINGS)
    assert not set(Export.SETTINGS_FIELDS) & set(NOT_SETTINGS)


def test_a_duplicate_equals_its_original_in_every_field_but_the_ones_that_differ_on_purpose(
    original, bob
):
    copy = services.export_duplicate(export=original, user=bob)

    copy = Export.objects.get(pk=copy.pk)
    compared = [field for field in export_fields() if field.name not in NOT_COPIED]
    assert {field.name for field in compared} == set(Export.SETTINGS_FIELDS) - set(NOT_COPIED)
    for field in compared:
        assert comparable(copy, field) == comparable(original, field), field.name
    assert copy.sync_mode == Export.SyncMode.MIRROR == original.sync_mode
    assert copy.display_name == "Copy of display_name of the original"
    assert (copy.created_by, copy.schedule_enabled) == (bob, False)
    assert copy.pk != original.pk
    assert rows_of(copy) == rows_of(original) != []


def test_editing_an_export_and_saving_it_unchanged_keeps_every_setting(
    original, alice, monkeypatch
):
    """The edit form shows every setting and hands every one back to ``export_save``."""

    class Lists:
        def list_destinations(self):
            return [DestinationList(id=original.list_id, name=original.list_name)]

    monkeypatch.setattr("connections.services.backend_for", lambda connection: Lists())
    monkeypatch.setattr("exports.forms.registry.backend_class", lambda kind: EveryFeature)
    before = export_settings(original)
    rows_before = rows_of(original)
    shown = ExportForm(user=alice, export=original)
    data = {name: shown[name].value() for name in shown.fields}

    form = ExportForm(data, user=alice, export=original)
    assert form.is_valid(), form.errors
    services.export_save(export=original, user=alice, **form.export_fields())

    assert export_settings(Export.objects.get(pk=original.pk)) == before
    assert rows_of(Export.objects.get(pk=original.pk)) == rows_before


def test_saving_refuses_a_call_that_leaves_a_setting_out(original, alice):
    values = export_settings(original)
    del values["sync_mode"]
    with pytest.raises(TypeError, match="missing \\['sync_mode'\\]"):
        services.export_save(export=original, user=alice, **values)


# Removing a connection -------------------------------------------------------------------------


def test_removing_a_connection_in_use_without_a_choice_names_its_exports_and_changes_nothing(
    make_export, everyone, connection
):
    first = make_export(everyone, display_name="Newsletter")
    second = make_export(everyone, display_name="Alerts")

    with pytest.raises(connection_services.ConnectionInUse) as refused:
        connection_services.connection_delete(connection=connection)

    assert refused.value.users == [second, first]
    assert Connection.objects.filter(pk=connection.pk).exists()
    assert Export.objects.filter(connection=connection).count() == 2


@pytest.mark.parametrize(
    ("action", "left"), [(connection_signals.DETACH, 1), (connection_signals.REMOVE, 0)]
)
def test_removing_a_connection_detaches_or_removes_its_exports_as_chosen(
    make_export, everyone, connection, action, left
):
    export = make_export(everyone)

    connection_services.connection_delete(connection=connection, dependants_action=action)

    assert not Connection.objects.filter(pk=connection.pk).exists()
    assert Export.objects.filter(pk=export.pk, connection=None).count() == left


# The schedule pauses itself when a run ends ------------------------------------------------------


def failed_scheduled_run(export: Export) -> ExportRun:
    return ExportRun.objects.create(
        export=export,
        status=ExportRun.Status.FAILED,
        trigger=ExportRun.Trigger.SCHEDULE,
        finished_at=timezone.now(),
        last_error="The list was deleted.",
    )


def test_the_schedule_pauses_after_three_failed_scheduled_runs_in_a_row(make_export, everyone):
    export = make_export(everyone)
    runs = [failed_scheduled_run(export) for _time in range(3)]

    assert not services.export_pause_schedule_if_failing(runs[1])
    assert services.export_pause_schedule_if_failing(runs[2])

    export.refresh_from_db()
    assert not export.schedule_enabled
    assert export.schedule_paused_reason.startswith("Paused on ")
    assert "The last one said: The list was deleted." in export.schedule_paused_reason


def test_the_alerts_only_send_mail_and_never_pause_a_schedule(make_export, everyone):
    export = make_export(everyone)
    runs = [failed_scheduled_run(export) for _time in range(3)]

    alerts.run_finished(runs[-1].pk)

    export.refresh_from_db()
    assert export.schedule_enabled and export.schedule_paused_reason == ""


def test_the_form_and_the_api_take_and_show_every_setting():
    """``Export.SETTINGS_FIELDS`` is the one list: a new setting is in the form, in what the
    API takes and in what it answers (``list_name`` is found from the list id, or named as a
    new list)."""
    from exports.apis import ExportSerializer, ExportWriteSerializer

    given = (set(Export.SETTINGS_FIELDS) - {"list_name"}) | {"new_list_name", "mapping"}
    assert set(ExportForm.base_fields) == given
    assert set(ExportWriteSerializer().fields) == given
    assert set(Export.SETTINGS_FIELDS) <= set(ExportSerializer().fields)


def test_run_all_counts_an_export_held_for_approval_meanwhile_as_waiting_not_running(
    make_export, alice, monkeypatch
):
    """The guard may hold a run between Run all reading the exports and queueing them."""
    export = make_export(schedule_enabled=True)
    read_before_the_hold = [RunAllExport(export, waiting_run_id=None)]
    monkeypatch.setattr(services, "exports_to_run_all", lambda user: read_before_the_hold)
    held = ExportRun.objects.create(export=export, trigger="schedule", status="awaiting_approval")

    done = services.exports_run_all(user=alice)

    assert (done.queued, done.already_running) == ([], [])
    assert done.awaiting_approval == [RunAllExport(export, held.pk)]
    assert list(export.runs.values_list("pk", flat=True)) == [held.pk]
