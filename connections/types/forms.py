"""The base of every type's credentials form (the secret fields on the setup and edit pages)."""

from __future__ import annotations

from typing import Any

from django import forms


class CredentialsForm(forms.Form):
    """A type's secret fields. Secrets are never rendered back: on the edit page the fields are
    empty and optional, and leaving them empty keeps the stored secret."""

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            for form_field in self.fields.values():
                form_field.required = False

    def credentials(self) -> dict[str, Any]:
        """The typed-in secrets, or {} when nothing new was typed."""
        return {}
