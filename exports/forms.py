"""The forms of Data > Exports (**Add export** / **Edit**) and Admin > System > **Schedule**."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache, cached_property
from typing import Any, cast

from django import forms
from django.core import signing
from django.db import models
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.translation import LaterText
from connections.models import Connection
from connections.selectors import connections_usable_by
from connections.types import registry
from connections.types.base import Backend, DestinationField, FieldType
from exports import destinations, limits, mapping, selectors
from exports.mapping import MappingRow
from exports.models import EMAIL, Export, FieldMapping, GuardDefaults, RefreshSchedule
from segments.models import ProfileField, Segment
from segments.rules import BUILTIN_FIELDS
from segments.selectors import field_names, field_types

#: What a user gives for an export, on **Add export** / **Edit** and in the API: its settings
#: (``Export.SETTINGS_FIELDS``), with the name of a new list to create where the list's name
#: would be (``list_name`` itself is found from the list id when the form checks it), and its
#: field mapping (``exports.mapping``).
GIVEN_FIELDS = (
    *("new_list_name" if name == "list_name" else name for name in Export.SETTINGS_FIELDS),
    "mapping",
)
#: The pre-flight guard's thresholds of an export (``exports.guard``).
GUARD_FIELDS = ("guard_max_removal_percent", "guard_max_removals", "guard_max_add_factor")
#: A mapping row's destination that is to be created when the export is saved.
NEW_FIELD = "__new__"
#: The inputs of one mapping row on the page (``mapping-<input>``, one value per row).
ROW_INPUTS = ("profile_field", "destination", "new_name", "new_type", "when_empty")

FIELD_TYPE_LABELS = {
    FieldType.TEXT: gettext_lazy("Text"),
    FieldType.NUMBER: gettext_lazy("Number"),
    FieldType.DATE: gettext_lazy("Date"),
    FieldType.DATETIME: gettext_lazy("Date and time"),
    FieldType.BOOLEAN: gettext_lazy("Yes / no"),
    FieldType.SINGLE_SELECT: gettext_lazy("One of a list"),
    FieldType.MULTI_SELECT: gettext_lazy("Several of a list"),
    FieldType.COUNTRY: gettext_lazy("Country"),
}
BUILTIN_LABELS = {
    "email": gettext_lazy("Email"),
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
}

NO_LIST = gettext_lazy("Give the ID of the list to export to, or select “Load lists” and pick one.")


def _new_export_initial() -> dict[str, Any]:
    """What **Add export** starts with: the model's defaults of the settings that have one."""
    fields = (cast(models.Field, Export._meta.get_field(name)) for name in Export.SETTINGS_FIELDS)
    return {field.name: field.get_default() for field in fields if field.has_default()}


def _initial_of(export: Export) -> dict[str, Any]:
    initial = selectors.export_settings(export)
    initial["fixed_tags"] = ", ".join(export.fixed_tags or [])
    initial["mapping"] = _row_inputs_of(mapping.rows_of(export))
    return initial


def _row_inputs_of(rows: list[MappingRow]) -> list[dict[str, str]]:
    return [
        {
            "profile_field": row.profile_field,
            "destination": row.destination_key,
            "new_name": "",
            "new_type": "",
            "when_empty": row.when_empty,
        }
        for row in rows
    ]


class ConnectionChoiceField(forms.ModelChoiceField):
    default_error_messages = {
        "invalid_choice": gettext_lazy(
            "Choose one of the connections listed here. The one you sent is not available to "
            "you: only administrators may use it, or it was removed."
        ),
    }


class MappingWidget(forms.Widget):
    """The mapping rows' inputs (``mapping-profile_field`` ... one value per row, in order) as
    a list of dicts; the API gives that list as it is."""

    def value_from_datadict(self, data, files, name):
        if not hasattr(data, "getlist"):
            return data.get(name)
        columns = {part: data.getlist(f"{name}-{part}") for part in ROW_INPUTS}
        count = max(len(values) for values in columns.values())
        return [
            {
                part: (values[index] if index < len(values) else "")
                for part, values in columns.items()
            }
            for index in range(count)
        ]

    def value_omitted_from_data(self, data, files, name):
        if hasattr(data, "getlist"):
            return not data.getlist(f"{name}-profile_field")
        return name not in data


class MappingField(forms.Field):
    """Rows of profile field -> destination field, as dicts with the ``ROW_INPUTS`` (the API's
    rows, with ``destination_key`` and ``create``, are turned into the same); rows left
    entirely empty are dropped. Checked against the service by ``ExportForm.clean``."""

    widget = MappingWidget
    default_error_messages = {
        "invalid": gettext_lazy(
            "The field mapping must be a list of rows, each with a profile field and a "
            "destination field."
        ),
    }

    def to_python(self, value) -> list[dict[str, str]]:
        if value in (None, ""):
            return []
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        rows = [_row_inputs(row) for row in value]
        rows = [row for row in rows if row["profile_field"] or row["destination"]]
        if len(rows) > mapping.MAX_ROWS:
            raise forms.ValidationError(
                _("An export maps at most %(count)d fields.") % {"count": mapping.MAX_ROWS}
            )
        return rows


def _row_inputs(row: dict) -> dict[str, str]:
    """A row from the page or the API, as the page's inputs (bounded text)."""

    def text(name: str) -> str:
        value = row.get(name)
        return "" if value is None else str(value).strip()[:255]

    inputs = {part: text(part) for part in ROW_INPUTS}
    if "destination_key" in row or "create" in row:  # the API's form of a row
        if row.get("create"):
            inputs["destination"] = NEW_FIELD
            inputs["new_name"] = text("destination_name")
            inputs["new_type"] = text("destination_type") or FieldType.TEXT
        else:
            inputs["destination"] = text("destination_key")
    return inputs


#: Load fields' answer kept in the page (``ExportForm.loaded_fields_token``): signed, for an
#: hour, at most this many fields (the services allow a few dozen, Autopilot 200).
LOADED_FIELDS_SALT = "exports.loaded-fields"
LOADED_FIELDS_MAX_AGE = 3600
MAX_LOADED_FIELDS = 500
MAX_LOADED_TOKEN = 200_000
_FIELD_TYPES = frozenset(kind.value for kind in FieldType)


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
    mapping = MappingField(label=gettext_lazy("Data matching"), required=False)
    fixed_tags = forms.CharField(
        label=gettext_lazy("Tags for everyone sent"),
        required=False,
        max_length=2000,
        help_text=gettext_lazy("Separate tags with commas."),
    )
    tags_field = forms.ChoiceField(
        label=gettext_lazy("Tags from the profile field"), required=False
    )
    remove_tags_on_leave = forms.BooleanField(
        label=gettext_lazy(
            "In Mirror mode, take these tags off people who leave the segments instead of "
            "removing them from the list"
        ),
        required=False,
    )
    new_subscriber_status = forms.ChoiceField(
        label=gettext_lazy("New people join as"),
        required=False,
        choices=[
            ("", gettext_lazy("Subscribed (the service's default)")),
            ("subscribed", gettext_lazy("Subscribed")),
            (
                "pending",
                gettext_lazy("Pending: the service asks them to confirm (double opt-in)"),
            ),
        ],
    )
    consent_field = forms.ChoiceField(
        label=gettext_lazy("Consent from the yes/no profile field"), required=False
    )
    consent_default = forms.ChoiceField(
        label=gettext_lazy("Otherwise, consent for new people"),
        required=False,
        choices=Export.Consent.choices,
    )
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
    guard_max_removal_percent = forms.IntegerField(
        label=gettext_lazy("Stop when a run would remove more than this share of the list (%)"),
        required=False,
        min_value=0,
        max_value=100,
        error_messages={
            "min_value": gettext_lazy("Give a percentage from 0 to 100, or leave it blank."),
            "max_value": gettext_lazy("Give a percentage from 0 to 100, or leave it blank."),
            "invalid": gettext_lazy("Give a whole number from 0 to 100, or leave it blank."),
        },
    )
    guard_max_removals = forms.IntegerField(
        label=gettext_lazy("Stop when a run would remove more than this many addresses"),
        required=False,
        min_value=0,
        max_value=100_000_000,
        error_messages={
            "min_value": gettext_lazy("Give 0 addresses or more, or leave it blank."),
            "max_value": gettext_lazy("Give at most 100,000,000 addresses, or leave it blank."),
            "invalid": gettext_lazy("Give a whole number of addresses, or leave it blank."),
        },
    )
    guard_max_add_factor = forms.IntegerField(
        label=gettext_lazy("Stop when a run would add more than this many times the list's size"),
        required=False,
        min_value=1,
        max_value=1000,
        error_messages={
            "min_value": gettext_lazy("Give a factor from 1 to 1,000, or leave it blank."),
            "max_value": gettext_lazy("Give a factor from 1 to 1,000, or leave it blank."),
            "invalid": gettext_lazy("Give a whole number from 1 to 1,000, or leave it blank."),
        },
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
            kwargs.setdefault("initial", _initial_of(export))
        else:
            kwargs.setdefault(
                "initial",
                {
                    **_new_export_initial(),
                    "fixed_tags": "",
                    "mapping": _row_inputs_of(mapping.default_rows()),
                },
            )
        super().__init__(*args, **kwargs)
        self.export = export
        #: Why the list id could not be checked with the service (the view warns), or "".
        self.list_unchecked: LaterText | str = ""
        #: Why the mapped fields could not be checked with the service, or "".
        self.fields_unchecked: LaterText | str = ""
        #: The checked mapping (``clean``), as ``services.export_save`` takes it.
        self.mapping_rows: list[MappingRow] = []
        #: The destination's fields when **Load fields** or the checks asked for them.
        self.destination_fields: list[DestinationField] | None = None
        self._choice("connection").queryset = connections_usable_by(user)
        self._choice("segments").queryset = Segment.objects.order_by("name")
        names = list(dict.fromkeys([*BUILTIN_FIELDS, *field_names()]))
        if export is not None:  # keep a field the catalogue no longer lists selectable
            saved = [row.profile_field for row in export.field_rows()]
            for current in (*saved, export.tags_field, export.consent_field):
                if current and current not in names:
                    names.append(current)
        self.profile_field_names = names
        choices = [(name, name) for name in names]
        none = [("", _("— None —"))]
        self._choice("tags_field").choices = none + choices
        self._choice("consent_field").choices = none + choices

    @classmethod
    def unjudged(cls, data, *, user, export: Export | None) -> ExportForm:
        """The choices so far, unsaved and unjudged (no errors shown, the service not asked):
        **Add a field**, **Remove** and **Load fields** draw the page again with them."""
        shape = cls(user=user, export=export)
        initial = {
            name: field.widget.value_from_datadict(data, {}, name)
            for name, field in shape.fields.items()
        }
        return cls(user=user, export=export, initial=initial)

    def _choice(self, name: str) -> forms.ModelChoiceField:
        """A field whose choices or queryset the form sets (typed for the type checker)."""
        return cast(forms.ModelChoiceField, self.fields[name])

    # For the template --------------------------------------------------------------------------

    @cached_property
    def _kind_features(self) -> list[dict[str, Any]]:
        kinds = dict.fromkeys(
            connection.kind for connection in self._choice("connection").queryset or []
        )
        features = []
        for kind in kinds:
            backend = registry.backend_class(kind)
            features.append(
                {
                    "kind": kind,
                    "label": backend.label,
                    "tags": backend.supports_tags,
                    "statuses": backend.new_subscriber_statuses,
                    "consent_label": backend.consent_field_label,
                    "creatable": sorted(backend.creatable_field_types),
                }
            )
        return features

    def kind_features(self) -> list[dict[str, Any]]:
        """What each offered connection type supports, for the sections shown only for it."""
        return self._kind_features

    def selected_kind(self) -> str:
        selected = str(self["connection"].value() or "")
        connection = next(
            (
                item
                for item in self._choice("connection").queryset or []
                if str(item.pk) == selected
            ),
            None,
        )
        return connection.kind if connection is not None else ""

    # The connection types that have a feature: the page shows its section for them only.

    def tag_kind_list(self) -> list[str]:
        return [item["kind"] for item in self.kind_features() if item["tags"]]

    def tag_kinds(self) -> str:
        return " ".join(self.tag_kind_list())

    def kinds_without_tags(self) -> list[dict[str, Any]]:
        return [item for item in self.kind_features() if not item["tags"]]

    def status_kind_list(self) -> list[str]:
        return [item["kind"] for item in self.kind_features() if item["statuses"]]

    def status_kinds(self) -> str:
        return " ".join(self.status_kind_list())

    def consent_kind_list(self) -> list[str]:
        return [item["kind"] for item in self.kind_features() if item["consent_label"]]

    def consent_kinds(self) -> str:
        return " ".join(self.consent_kind_list())

    def kinds_without_options(self) -> list[dict[str, Any]]:
        return [
            item
            for item in self.kind_features()
            if not item["statuses"] and not item["consent_label"]
        ]

    def mapping_row_inputs(self) -> list[dict[str, Any]]:
        """The rows to draw, as typed (or saved), each with its destination choices: the
        service's fields once loaded, else the built-in ones and the row's own."""
        value = self["mapping"].value()
        rows = value if isinstance(value, list) else []
        rows = [_row_inputs(row) if "destination" not in row else row for row in rows]
        saved = {
            row.destination_key: row for row in (self.export.field_rows() if self.export else [])
        }
        loaded = self.destination_fields
        drawn = []
        for index, row in enumerate(rows or [dict.fromkeys(ROW_INPUTS, "")]):
            options: list[tuple[str, str]] = []
            if loaded is not None:
                options = [
                    (field.key, _destination_label(field.name, field.type, field.key))
                    for field in loaded
                ]
            else:
                options = [(key, str(label)) for key, label in BUILTIN_LABELS.items()]
            known = {key for key, _label in options}
            current = row.get("destination", "")
            if current and current != NEW_FIELD and current not in known:
                saved_row = saved.get(current)
                name = saved_row.destination_name if saved_row else current
                kind = saved_row.destination_type if saved_row else FieldType.TEXT
                options.append((current, _destination_label(name, kind, current)))
            drawn.append({"index": index, "number": index + 1, "options": options, **row})
        return drawn

    def loaded_fields_token(self) -> str:
        """The fields **Load fields** offered, signed with the connection and list they came
        from: **Add a field** and **Remove** post it back and draw the rows with them again,
        without asking the service (``keep_loaded_fields``). "" when none were loaded."""
        if self.destination_fields is None:
            return ""
        return signing.dumps(
            {
                **self._loaded_from(),
                "fields": [
                    [field.key, field.name, str(field.type)]
                    for field in self.destination_fields[:MAX_LOADED_FIELDS]
                ],
            },
            salt=LOADED_FIELDS_SALT,
            compress=True,
        )

    def keep_loaded_fields(self, token: str) -> None:
        """Offer the fields of ``loaded_fields_token`` again, if it is ours, recent, and from
        the connection and list the form still names (else the rows offer the built-in
        fields, as before Load fields)."""
        if not token or len(token) > MAX_LOADED_TOKEN:
            return
        try:
            loaded = signing.loads(token, salt=LOADED_FIELDS_SALT, max_age=LOADED_FIELDS_MAX_AGE)
        except signing.BadSignature:
            return
        if {key: loaded.get(key) for key in ("connection", "list_id")} != self._loaded_from():
            return
        self.destination_fields = [
            DestinationField(key=key, name=name, type=FieldType(kind))
            for key, name, kind in loaded.get("fields", [])[:MAX_LOADED_FIELDS]
            if kind in _FIELD_TYPES
        ]

    def _loaded_from(self) -> dict[str, str]:
        return {
            "connection": str(self["connection"].value() or ""),
            "list_id": str(self["list_id"].value() or "").strip(),
        }

    def field_type_choices(self) -> list[tuple[str, str]]:
        return [(kind.value, str(label)) for kind, label in FIELD_TYPE_LABELS.items()]

    def when_empty_choices(self) -> list[tuple[str, str]]:
        return [(value, str(label)) for value, label in FieldMapping.WhenEmpty.choices]

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
        if connection is not None:
            self._full_clean_service_options(
                registry.backend_class(connection.kind), connection.kind_label
            )
        if cleaned.get("new_list_name"):  # created on save, not while checking
            self._refuse_new_list(destinations.new_list_check(connection, list_id), connection)
            self._clean_mapping(connection, "")
            return cleaned
        if not list_id:
            self.add_error("list_id", NO_LIST)
        if connection is None or not list_id:
            self._clean_mapping(connection, "")
            return cleaned
        self._clean_mapping(connection, list_id)
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

    def clean_fixed_tags(self) -> list[str]:
        tags = mapping.parse_tags(self.cleaned_data.get("fixed_tags") or "")
        if len(tags) > mapping.MAX_TAGS:
            raise forms.ValidationError(
                _("Give at most %(count)d tags.") % {"count": mapping.MAX_TAGS}
            )
        long = next((tag for tag in tags if len(tag) > mapping.MAX_TAG_LENGTH), None)
        if long:
            raise forms.ValidationError(
                _("The tag “%(tag)s…” is too long: a tag has at most %(count)d characters.")
                % {"tag": long[:30], "count": mapping.MAX_TAG_LENGTH}
            )
        return tags

    def _full_clean_service_options(self, backend: type[Backend], service: str) -> None:
        """Tags, the status of new people and consent, where the service has them."""
        cleaned = self.cleaned_data
        tags_given = cleaned.get("fixed_tags") or cleaned.get("tags_field")
        if not backend.supports_tags and (tags_given or cleaned.get("remove_tags_on_leave")):
            self.add_error(
                "fixed_tags",
                _(
                    "%(service)s has no tags, so the export cannot tag people there. Clear "
                    "the tags, or send to Mailchimp or Ortto."
                )
                % {"service": service},
            )
        status = cleaned.get("new_subscriber_status") or ""
        if status and status not in backend.new_subscriber_statuses:
            self.add_error(
                "new_subscriber_status",
                _("%(service)s does not take a status for new people: leave it empty.")
                % {"service": service},
            )
        consent_given = cleaned.get("consent_field") or cleaned.get("consent_default")
        if consent_given and not backend.consent_field_label:
            self.add_error(
                "consent_field",
                _("%(service)s does not record consent from us: leave it empty.")
                % {"service": service},
            )
        elif cleaned.get("consent_field"):
            self._check_consent_field(cleaned["consent_field"])

    def _check_consent_field(self, name: str) -> None:
        """Consent is read from a yes/no profile field only: any other field's values would
        have to be guessed. A saved field that no profile holds any more has no type to
        judge: it stays, and a run warns about each value that is not yes or no."""
        kind = field_types().get(name)
        if kind is None and name in BUILTIN_FIELDS:
            kind = ProfileField.DataType.TEXT
        if kind is not None and kind != ProfileField.DataType.BOOLEAN:
            self.add_error(
                "consent_field",
                _(
                    "Consent is read from a yes/no profile field, and “%(field)s” is a field "
                    "of type “%(type)s”. Pick a yes/no field, or leave it empty and choose the "
                    "consent for new people."
                )
                % {"field": name, "type": ProfileField.DataType(kind).label},
            )

    def _clean_mapping(self, connection: Connection | None, list_id: str) -> None:
        """Check the rows: known profile fields, one row per destination field, the e-mail
        mapped, and (when the service answers) destination fields that exist or can be made."""
        rows = self.cleaned_data.get("mapping") or []
        errors: list[str] = []
        backend = registry.backend_class(connection.kind) if connection else None
        service = connection.kind_label if connection else ""
        wanted = any(row["destination"] not in BUILTIN_LABELS for row in rows)
        service_fields = self._service_fields(connection, list_id) if wanted else None
        saved = {
            row.destination_key: row for row in (self.export.field_rows() if self.export else [])
        }
        checked: list[MappingRow] = []
        for number, row in enumerate(rows, start=1):
            profile_field, destination = row["profile_field"], row["destination"]
            if not profile_field:
                errors.append(_("Row %(row)d: choose the profile field to send.") % {"row": number})
                continue
            if profile_field not in self.profile_field_names:
                errors.append(
                    _("Row %(row)d: profiles have no field “%(field)s”.")
                    % {"row": number, "field": profile_field}
                )
                continue
            when_empty = row["when_empty"] or FieldMapping.WhenEmpty.LEAVE
            if when_empty not in FieldMapping.WhenEmpty.values:
                when_empty = FieldMapping.WhenEmpty.LEAVE
            if not destination:
                errors.append(
                    _(
                        "Row %(row)d: choose the destination field that receives “%(field)s”, "
                        "or create a new one."
                    )
                    % {"row": number, "field": profile_field}
                )
                continue
            if destination == NEW_FIELD:
                made = self._new_field_row(number, row, backend, service, service_fields, errors)
                if made is not None:
                    checked.append(
                        MappingRow(
                            profile_field, made.key, made.name, made.type, when_empty, create=True
                        )
                    )
                continue
            if destination in BUILTIN_LABELS:
                name, kind = mapping.BUILTIN_NAMES[destination], FieldType.TEXT
            elif service_fields is not None:
                found = service_fields.get(destination)
                if found is None:
                    errors.append(
                        _(
                            "Row %(row)d: the list has no field “%(field)s” (was it deleted in "
                            "%(service)s?). Select Load fields and pick another, or create it."
                        )
                        % {"row": number, "field": destination, "service": service}
                    )
                    continue
                name, kind = found.name, found.type
            else:
                previous = saved.get(destination)
                name = previous.destination_name if previous else destination
                kind = FieldType(previous.destination_type) if previous else FieldType.TEXT
            checked.append(MappingRow(profile_field, destination, name, kind, when_empty))
        by_destination: dict[str, list[MappingRow]] = {}
        for item in checked:
            key = item.destination_name.casefold() if item.create else item.destination_key
            by_destination.setdefault(key, []).append(item)
        for same in by_destination.values():
            if len(same) > 1:
                errors.append(
                    _(
                        "“%(first)s” and “%(second)s” are both mapped to the destination field "
                        "“%(field)s”. A destination field takes one profile field: remove one "
                        "of the rows."
                    )
                    % {
                        "first": same[0].profile_field,
                        "second": same[1].profile_field,
                        "field": same[0].destination_name or same[0].destination_key,
                    }
                )
        if not any(row["destination"] == EMAIL for row in rows):
            errors.append(
                _("Map a profile field to Email: the service needs each person's address.")
            )
        for error in errors:
            self.add_error("mapping", error)
        self.mapping_rows = checked

    def _new_field_row(
        self, number, row, backend, service, service_fields, errors
    ) -> DestinationField | None:
        name = row["new_name"]
        if not name:
            errors.append(_("Row %(row)d: give the new field a name.") % {"row": number})
            return None
        try:
            kind = FieldType(row["new_type"] or FieldType.TEXT)
        except ValueError:
            kind = None
        if backend is not None and (kind is None or kind not in backend.creatable_field_types):
            if backend.creatable_field_types:
                errors.append(
                    _(
                        "Row %(row)d: %(service)s fields of this type cannot be created from "
                        "here. Choose one of: %(types)s."
                    )
                    % {
                        "row": number,
                        "service": service,
                        "types": ", ".join(
                            str(FIELD_TYPE_LABELS[item])
                            for item in sorted(backend.creatable_field_types)
                        ),
                    }
                )
            else:
                errors.append(
                    _(
                        "Row %(row)d: %(service)s fields are created in %(service)s itself. "
                        "Create it there, then select Load fields and pick it."
                    )
                    % {"row": number, "service": service}
                )
            return None
        if service_fields is not None:
            taken = next(
                (
                    field
                    for field in service_fields.values()
                    if field.name.casefold() == name.casefold()
                ),
                None,
            )
            if taken is not None:
                errors.append(
                    _(
                        "Row %(row)d: the list already has a field named “%(name)s”: pick it "
                        "instead of creating it."
                    )
                    % {"row": number, "name": taken.name}
                )
                return None
        return DestinationField(key="", name=name, type=kind or FieldType.TEXT)

    def _service_fields(
        self, connection: Connection | None, list_id: str
    ) -> dict[str, DestinationField] | None:
        """The list's fields by key, or None (with ``fields_unchecked``) when they cannot be
        had: no connection or list yet, or the service did not answer."""
        if connection is None or not list_id or self.cleaned_data.get("new_list_name"):
            return None
        try:
            fields = destinations.destination_fields(connection, list_id)
        except destinations.FieldsUnavailable as error:
            self.fields_unchecked = error.reason
            return None
        self.destination_fields = fields
        return {field.key: field for field in fields}

    @property
    def guard_fields(self) -> list[forms.BoundField]:
        """The pre-flight guard's thresholds (Safety), blank for the defaults."""
        return [self[name] for name in GUARD_FIELDS]

    def export_fields(self) -> dict[str, Any]:
        """The cleaned values, as ``services.export_save`` takes them."""
        return {
            **{
                name: self.cleaned_data[name] for name in (*Export.SETTINGS_FIELDS, "new_list_name")
            },
            "mapping": self.mapping_rows,
        }

    def limit_warning(self) -> str | None:
        return limits.limit_warning(
            self.cleaned_data["connection"].kind, self.cleaned_data["segments"]
        )


def _destination_label(name: str, kind: str, key: str) -> str:
    try:
        type_label = str(FIELD_TYPE_LABELS[FieldType(kind)])
    except ValueError:
        type_label = kind
    shown = str(BUILTIN_LABELS.get(key, name))
    return f"{shown} ({type_label})"


# Admin > System > Safety ----------------------------------------------------------------------


class GuardDefaultsForm(forms.ModelForm):
    """The pre-flight guard's defaults (``GuardDefaults``): every export without its own."""

    max_removal_percent = forms.IntegerField(
        label=gettext_lazy("Stop when a run would remove more than this share of the list (%)"),
        min_value=0,
        max_value=100,
        error_messages={
            "required": gettext_lazy("Give a percentage from 0 to 100."),
            "min_value": gettext_lazy("Give a percentage from 0 to 100."),
            "max_value": gettext_lazy("Give a percentage from 0 to 100."),
            "invalid": gettext_lazy("Give a whole number from 0 to 100."),
        },
    )
    max_removals = forms.IntegerField(
        label=gettext_lazy("Stop when a run would remove more than this many addresses"),
        min_value=0,
        max_value=100_000_000,
        error_messages={
            "required": gettext_lazy("Give a number of addresses."),
            "min_value": gettext_lazy("Give 0 addresses or more."),
            "max_value": gettext_lazy("Give at most 100,000,000 addresses."),
            "invalid": gettext_lazy("Give a whole number of addresses."),
        },
    )
    max_add_factor = forms.IntegerField(
        label=gettext_lazy("Stop when a run would add more than this many times the list's size"),
        min_value=1,
        max_value=1000,
        error_messages={
            "required": gettext_lazy("Give a factor from 1 to 1,000."),
            "min_value": gettext_lazy("Give a factor from 1 to 1,000."),
            "max_value": gettext_lazy("Give a factor from 1 to 1,000."),
            "invalid": gettext_lazy("Give a whole number from 1 to 1,000."),
        },
    )

    class Meta:
        model = GuardDefaults
        fields = ("max_removal_percent", "max_removals", "max_add_factor")


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
