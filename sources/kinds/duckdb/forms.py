from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from sources.kinds.duckdb.download import address_problem, is_address
from sources.kinds.duckdb.kind import FILE_FORMATS
from sources.kinds.forms import SettingsForm


class FileSettingsForm(SettingsForm):
    path = forms.CharField(
        label=_("File"),
        max_length=1000,
        help_text=_(
            "A path on the server running Audience Relay (wildcards such as "
            "/data/people-*.parquet read several files as one), or an https:// address: the "
            "file is downloaded at each run, then read."
        ),
    )
    file_format = forms.ChoiceField(
        label=_("Format"),
        choices=[
            ("auto", _("From the file name")),
            ("parquet", _("Parquet")),
            ("csv", _("CSV")),
        ],
        initial="auto",
        required=False,
    )

    def clean_path(self) -> str:
        path = self.cleaned_data["path"].strip()
        if is_address(path):
            problem = address_problem(path)
            if problem is not None:
                raise forms.ValidationError(str(problem))
        return path

    def clean_file_format(self) -> str:
        value = self.cleaned_data.get("file_format") or "auto"
        return value if value in FILE_FORMATS else "auto"
