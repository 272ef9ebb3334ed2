"""Filters that refuse what the OpenAPI document does not allow, rather than ignore it."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

#: The largest id PostgreSQL's bigint holds.
MAX_ID = 2**63 - 1


class _StrictForm(forms.Form):
    def clean(self) -> dict:
        cleaned = super().clean()
        for name, field in self.fields.items():
            # django-filter reads "?status=" (or "?name=") as no filter at all.
            if name in self.data and self.data.get(name) == "":
                self.add_error(name, _("Give a value, or leave the parameter out."))
            elif (
                # Its widget reads anything but true or false as "no filter".
                isinstance(field, forms.NullBooleanField)
                and name in self.data
                and self.data.get(name, "").lower() not in ("true", "false")
            ):
                self.add_error(name, _("Give true or false."))
        return cleaned


class FilterSet(filters.FilterSet):
    def get_form_class(self):
        fields = {name: filter_.field for name, filter_ in self.filters.items()}
        return type(f"{type(self).__name__}Form", (_StrictForm,), fields)


@extend_schema_field({"type": "string", "minLength": 1})
class TextFilter(filters.CharFilter):
    """Text to look for; given empty, it is refused (see ``FilterSet``)."""


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    """The id of a related object; one that names nothing matches nothing."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)
