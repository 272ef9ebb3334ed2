"""The forms of Data > Exports (**Add export** / **Edit**) and Admin > System > **Schedule**."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache
from typing import Any, cast

from django import forms
from django.db import models
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.translation import LaterText
from connections.models import Connection
from connections.selectors import connections_usable_by
from connections.types import registry
from exports import destinations, limits, selectors
from exports.models import Export, RefreshSchedule
from segments.models import Segment
from segments.rules import BUILTIN_FIELDS
from segments.selectors import field_names

#: What a user gives for an export, on **Add export** / **Edit** and in the API: its settings
#: (``Export.SETTINGS_FIELDS``), with the name of a new list to create where the list's name
#: would be (``list_name`` itself is found from the list id when the form checks it).
GIVEN_FIELDS = tuple(
    "new_list_name" if name == "list_name" else name for name in Export.SETTINGS_FIELDS
)

NO_LIST = gettext_lazy("Give the ID of the list to export to, or select “Load lists” and pick one.")


def _new_export_initial() -> dict[str, Any]:
    """What **Add export** starts with: the model's defaults of the settings that have one."""
    fields = (cast(models.Field, Export._meta.get_field(name)) for name in Export.SETTINGS_FIELDS)
    return {field.name: field.get_default() for field in fields if field.has_default()}


class ConnectionChoiceField(forms.ModelChoiceField):
    default_error_messages = {
        "invalid_choice": gettext_lazy(
            "Choose one of the connections listed here. The one you sent is not available to "
            "you: only administrators may use it, or it was removed."
        ),
    }


class ExportForm(forms.ModelForm):
    """One form for **Add export** and **Edit**. Only the connections the user may use are
    offered and accepted, and the list id is checked with the service when it answers.

    Its fields are ``GIVEN_FIELDS``; each is declared below where the page words or offers it
    otherwise than the model field would. It never saves: ``services.export_save`` does."""

    connection = ConnectionChoiceField(
        label=gettext_lazy("Connection for export"),
        queryset=Connection.objects.none(),
        empty_label=None,
        error_messages={"required": gettext_lazy("Choose the connection to export through.")},
    )
    display_name = forms.CharField(
        label=gettext_lazy("Display name"),
        max_length=200,
        error_messages={"required": gettext_lazy("Give the export a name you will recognise.")},
    )
    list_id = forms.CharField(label=gettext_lazy("List ID"), max_length=200, required=False)
    new_list_name = forms.CharField(
        label=gettext_lazy("Or create a list named"), max_length=200, required=False
    )
    email_field = forms.ChoiceField(
        label=gettext_lazy("Email"),
        error_messages={
            "required": gettext_lazy("Choose the profile field that holds the email address.")
        },
    )
    first_name_field = forms.ChoiceField(label=gettext_lazy("First name"), required=False)
    last_name_field = forms.ChoiceField(label=gettext_lazy("Last name"), required=False)
    segments = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Segments"),
        queryset=Segment.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": gettext_lazy("Pick at least one segment to export."),
            "invalid_choice": gettext_lazy(
                "One of the segments no longer exists. Pick from the segments listed."
            ),
        },
    )
    schedule_enabled = forms.BooleanField(
        label=gettext_lazy("Run with every scheduled refresh"), required=False
    )
    sync_mode = forms.ChoiceField(
        label=gettext_lazy("Sync mode"),
        choices=[
            (
                Export.SyncMode.ADD_AND_UPDATE,
                gettext_lazy(
                    "Add and update: new and changed members are sent; unchanged ones cost "
                    "no call to the service."
                ),
            ),
            (
                Export.SyncMode.MIRROR,
                gettext_lazy(
                    "Mirror: also take people who left the segments off the list (deleted, "
                    "not unsubscribed, so they can come back)."
                ),
            ),
        ],
        widget=forms.RadioSelect,
        initial=Export.SyncMode.ADD_AND_UPDATE,
        required=False,
    )

    #: The page asks for the connection first (and checks it first).
    field_order = ["connection"]

    class Meta:
        model = Export
        fields = GIVEN_FIELDS

    def __init__(self, *args: Any, user, export: Export | None = None, **kwargs: Any):
        if export is not None:
            kwargs.setdefault("initial", selectors.export_settings(export))
        else:
            kwargs.setdefault("initial", _new_export_initial())
        super().__init__(*args, **kwargs)
        self.export = export
        #: Why the list id could not be checked with the service (the view warns), or "".
        self.list_unchecked: LaterText | str = ""
        self._choice("connection").queryset = connections_usable_by(user)
        self._choice("segments").queryset = Segment.objects.order_by("name")
        names = list(dict.fromkeys([*BUILTIN_FIELDS, *field_names()]))
        if export is not None:  # keep a field the catalogue no longer lists selectable
            for current in (export.email_field, export.first_name_field, export.last_name_field):
                if current and current not in names:
                    names.append(current)
        choices = [(name, name) for name in names]
        none = [("", _("— Not exported —"))]
        self._choice("email_field").choices = [("", _("— Choose a field —")), *choices]
        self._choice("first_name_field").choices = none + choices
        self._choice("last_name_field").choices = none + choices

    def _choice(self, name: str) -> forms.ModelChoiceField:
        """A field whose choices or queryset the form sets (typed for the type checker)."""
        return cast(forms.ModelChoiceField, self.fields[name])

    # For the template --------------------------------------------------------------------------

    def connection_groups(self) -> list[dict[str, Any]]:
        """The offered connections grouped by type, with the type's hints for the form; a type
        with none has no group."""
        selected = str(self["connection"].value() or "")
        limits_by_kind = limits.limits_by_kind()
        groups: dict[str, dict[str, Any]] = {}
        for connection in self._choice("connection").queryset or []:
            backend = registry.backend_class(connection.kind)
            group = groups.setdefault(
                connection.kind,
                {
                    "kind": connection.kind,
                    "label": connection.kind_label,
                    "icon": connection.icon,
                    "limit": limits_by_kind.get(connection.kind),
                    "list_hint": backend.list_hint,
                    "fields_hint": backend.fields_hint,
                    "connections": [],
                },
            )
            group["connections"].append(
                {"connection": connection, "checked": str(connection.pk) == selected}
            )
        return list(groups.values())

    def segment_options(self) -> list[dict[str, Any]]:
        selected = {str(value) for value in (self["segments"].value() or [])}
        return [
            {"segment": segment, "checked": str(segment.pk) in selected}
            for segment in self._choice("segments").queryset or []
        ]

    # Validation --------------------------------------------------------------------------------

    def clean_display_name(self) -> str:
        return self.cleaned_data["display_name"].strip()

    def clean_list_id(self) -> str:
        return self.cleaned_data["list_id"].strip()

    def clean_new_list_name(self) -> str:
        return self.cleaned_data["new_list_name"].strip()

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        connection = cleaned.get("connection")
        list_id = cleaned.get("list_id")
        cleaned["list_name"] = ""
        if cleaned.get("new_list_name"):  # created on save, not while checking
            self._refuse_new_list(destinations.new_list_check(connection, list_id), connection)
            return cleaned
        if not list_id:
            self.add_error("list_id", NO_LIST)
            return cleaned
        if connection is None:
            return cleaned
        check = destinations.destination_list_check(connection, list_id, saved=self.export)
        if check.outcome == destinations.NOT_FOUND:
            self.add_error(
                "list_id",
                _(
                    "This list does not exist in the %(service)s account behind “%(name)s”. "
                    "Check the List ID, or select “Load lists” and pick one."
                )
                % {"service": connection.kind_label, "name": connection.display_name},
            )
        elif check.outcome == destinations.UNCHECKED:
            self.list_unchecked = check.reason
        cleaned["list_name"] = check.name
        return cleaned

    def _refuse_new_list(self, refusal: str, connection: Connection | None) -> None:
        if refusal == destinations.BOTH_GIVEN:
            self.add_error(
                "new_list_name",
                _("Either give a List ID or name a new list, not both: clear one of them."),
            )
        elif refusal == destinations.NOT_CREATABLE and connection is not None:
            self.add_error(
                "new_list_name",
                _(
                    "Lists of %(service)s are created in %(service)s itself. Create it there, "
                    "then give its List ID."
                )
                % {"service": connection.kind_label},
            )

    def clean_sync_mode(self) -> str:
        return self.cleaned_data.get("sync_mode") or Export.SyncMode.ADD_AND_UPDATE

    def export_fields(self) -> dict[str, Any]:
        """The cleaned values, as ``services.export_save`` takes them."""
        return {
            name: self.cleaned_data[name] for name in (*Export.SETTINGS_FIELDS, "new_list_name")
        }

    def limit_warning(self) -> str | None:
        return limits.limit_warning(
            self.cleaned_data["connection"].kind, self.cleaned_data["segments"]
        )


# Admin > System > Schedule --------------------------------------------------------------------


def time_zone_choices(now: dt.datetime | None = None) -> list[tuple[str, str]]:
    """Every time zone by name, with its offset from UTC today ("Europe/Oslo (UTC+01:00)"):
    a select can then be searched by typing the place."""
    moment = now or dt.datetime.now(dt.UTC)
    return [(name, f"{name} ({_utc_offset(name, moment)})") for name in _time_zone_names()]


@cache
def _time_zone_names() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _utc_offset(name: str, moment: dt.datetime) -> str:
    offset = moment.astimezone(zoneinfo.ZoneInfo(name)).utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def weekday_choices() -> list[tuple[int, str]]:
    """ISO weekdays (1 = Monday), named in the user's language."""
    return [(number, str(WEEKDAYS[number - 1])) for number in range(1, 8)]


class TimesWidget(forms.Widget):
    """Several ``<input type="time" name="times">``; the template draws them."""

    def value_from_datadict(self, data, files, name):
        return data.getlist(name) if hasattr(data, "getlist") else data.get(name, [])


class TimesField(forms.Field):
    """Up to four times of day as "HH:MM"; empty inputs are ignored."""

    widget = TimesWidget

    def to_python(self, value) -> list[str]:
        times = []
        for text in value or []:
            text = (text or "").strip()
            if not text:
                continue
            try:
                parsed = dt.time.fromisoformat(text)
            except ValueError:
                raise forms.ValidationError(
                    _("“%(value)s” is not a time. Use hours and minutes, like 06:30.")
                    % {"value": text[:20]}
                ) from None
            times.append(parsed.strftime("%H:%M"))
        times = sorted(set(times))
        if len(times) > RefreshSchedule.MAX_TIMES:
            raise forms.ValidationError(
                _("Give at most %(count)d times a day.") % {"count": RefreshSchedule.MAX_TIMES}
            )
        return times


class ScheduleForm(forms.Form):
    enabled = forms.BooleanField(label=gettext_lazy("Scheduled refresh is on"), required=False)
    frequency = forms.ChoiceField(
        label=gettext_lazy("Repeat"),
        choices=RefreshSchedule.Frequency.choices,
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Choose Daily or Weekly.")},
    )
    weekdays = forms.TypedMultipleChoiceField(
        label=gettext_lazy("Days"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Time zone"),
        error_messages={
            "invalid_choice": gettext_lazy("Choose a time zone from the list, like Europe/Oslo.")
        },
    )
    times = TimesField(label=gettext_lazy("Time"), required=False)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["weekdays"]).choices = weekday_choices()
        cast(forms.ChoiceField, self.fields["time_zone"]).choices = time_zone_choices()

    @classmethod
    def for_schedule(cls, schedule: RefreshSchedule) -> ScheduleForm:
        return cls(
            initial={
                "enabled": schedule.enabled,
                "frequency": schedule.frequency,
                "weekdays": schedule.weekdays,
                "time_zone": schedule.time_zone,
                "times": schedule.times,
            }
        )

    @classmethod
    def with_another_time(cls, data) -> ScheduleForm:
        """**Add another time**: the choices so far, unsaved and unjudged, and one empty time."""
        times = [text for text in data.getlist("times") if text.strip()]
        return cls(
            initial={
                "enabled": bool(data.get("enabled")),
                "frequency": data.get("frequency") or RefreshSchedule.Frequency.DAILY,
                "weekdays": data.getlist("weekdays"),
                "time_zone": data.get("time_zone") or "UTC",
                "times": [*times, ""][: RefreshSchedule.MAX_TIMES],
            }
        )

    def time_slots(self) -> list[str]:
        """The values of the time inputs to draw: at least one, at most four."""
        value = self["times"].value() or []
        slots = [str(text) for text in value][: RefreshSchedule.MAX_TIMES]
        return slots or [""]

    def can_add_time(self) -> bool:
        return len(self.time_slots()) < RefreshSchedule.MAX_TIMES

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("enabled"):
            weekly = cleaned.get("frequency") == RefreshSchedule.Frequency.WEEKLY
            if weekly and not cleaned.get("weekdays"):
                self.add_error("weekdays", _("Pick at least one day for a weekly schedule."))
            if "times" in cleaned and not cleaned["times"]:
                self.add_error("times", _("Give at least one time, like 06:00."))
        return cleaned
