"""Validation through the pages' own forms, so that the API accepts exactly what they accept."""

from __future__ import annotations

from django import forms
from rest_framework import serializers


def validated(form: forms.BaseForm) -> dict:
    """The form's cleaned data, or a DRF ValidationError with the form's messages by field."""
    if form.is_valid():
        return form.cleaned_data
    raise serializers.ValidationError(
        {
            field if field != forms.forms.NON_FIELD_ERRORS else "non_field_errors": list(messages)
            for field, messages in form.errors.items()
        }
    )
