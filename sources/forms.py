"""The source form: what to read, the mapping of columns to profile fields, the sync mode.
The connection settings are the kind's own form (``sources.kinds.<kind>.forms``)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from segments.importing import FIXED_COLUMNS
from sources.models import Source

#: How many attributes one source may map (each a line of the attributes box).
MAX_MAPPED_ATTRIBUTES = 200
_ATTRIBUTE_LINE = re.compile(r"^\s*([^=]+?)\s*=\s*(.+?)\s*$")


class SourceForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    read_table = forms.CharField(
        label=_("Table or view"),
        required=False,
        max_length=300,
        help_text=_("With its schema if it is not the default one, e.g. crm.customers."),
    )
    read_query = forms.CharField(
        label=_("Or a query"),
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        help_text=_(
            "A SELECT query; it runs read-only, with a time limit. For a file, the file is the "
            "table “source”."
        ),
    )
    map_customer_id = forms.CharField(label=_("Customer id column"), max_length=200)
    map_email = forms.CharField(label=_("E-mail column"), required=False, max_length=200)
    map_first_name = forms.CharField(label=_("First name column"), required=False, max_length=200)
    map_last_name = forms.CharField(label=_("Last name column"), required=False, max_length=200)
    map_attributes = forms.CharField(
        label=_("Attributes"),
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=_(
            "One per line: field = column, e.g. tier = loyalty_tier. The field's type comes "
            "from the column's type."
        ),
    )
    sync_mode = forms.ChoiceField(
        label=_("Sync mode"), choices=Source.SyncMode.choices, initial=Source.SyncMode.FULL
    )
    cursor_column = forms.CharField(
        label=_("Cursor column"),
        required=False,
        max_length=200,
        help_text=_("Incremental mode: a column that grows when a row changes, e.g. updated_at."),
    )
    remove_missing = forms.BooleanField(
        label=_("Remove missing profiles"),
        required=False,
        help_text=_(
            "Full mode: profiles this source gave before and no longer has are removed. Over "
            "the threshold, a run waits for an administrator's approval."
        ),
    )
    on_schedule = forms.BooleanField(
        label=_("Run on the refresh schedule"), required=False, initial=True
    )

    def __init__(self, *args: Any, supports_tables: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.supports_tables = supports_tables
        if not supports_tables:
            del self.fields["read_table"]

    @classmethod
    def initial_for(cls, source: Source) -> dict[str, Any]:
        mapping = source.mapping or {}
        return {
            "name": source.name,
            "read_table": source.read_table,
            "read_query": source.read_query,
            **{f"map_{name}": mapping.get(name, "") for name in FIXED_COLUMNS},
            "map_attributes": "\n".join(
                f"{field} = {column}" for field, column in (mapping.get("attributes") or {}).items()
            ),
            "sync_mode": source.sync_mode,
            "cursor_column": source.cursor_column,
            "remove_missing": source.remove_missing,
            "on_schedule": source.on_schedule,
        }

    def clean_map_attributes(self) -> dict[str, str]:
        attributes: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["map_attributes"].splitlines(), 1):
            if not line.strip():
                continue
            match = _ATTRIBUTE_LINE.match(line)
            if not match:
                raise forms.ValidationError(
                    _("Line %(line)s is not “field = column”.") % {"line": number}
                )
            field, column = match.groups()
            if field in FIXED_COLUMNS:
                raise forms.ValidationError(
                    _("Line %(line)s: “%(field)s” has a box of its own above.")
                    % {"line": number, "field": field}
                )
            attributes[field] = column
        if len(attributes) > MAX_MAPPED_ATTRIBUTES:
            raise forms.ValidationError(
                _("Map at most %(limit)s attributes.") % {"limit": MAX_MAPPED_ATTRIBUTES}
            )
        return attributes

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        table, query = data.get("read_table", ""), data.get("read_query", "")
        if self.supports_tables and not (table or query):
            self.add_error("read_table", _("Choose a table or view, or write a query."))
        if table and query:
            self.add_error("read_query", _("Choose a table or a query, not both."))
        if data.get("sync_mode") == Source.SyncMode.INCREMENTAL and not data.get("cursor_column"):
            self.add_error("cursor_column", _("Incremental mode needs a cursor column."))
        return data

    def mapping(self) -> dict[str, Any]:
        data = self.cleaned_data
        mapping: dict[str, Any] = {
            name: data[f"map_{name}"] for name in FIXED_COLUMNS if data.get(f"map_{name}")
        }
        mapping["attributes"] = data.get("map_attributes") or {}
        return mapping
