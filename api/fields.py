"""Serializer fields that accept exactly what the OpenAPI document says."""

from __future__ import annotations

from rest_framework import serializers


class TextField(serializers.CharField):
    """A string, and only a string: DRF's ``CharField`` also takes a number and turns it into
    text, which a field documented as a string must refuse."""

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
