from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from segments.encoding import SAMPLE_BYTES, encoding_problem
from segments.importing import ColumnMap, ImportFileError, check_csv_header
from segments.models import Segment
from segments.rules import MAX_DEPTH, RuleError, validate


def parse_rules(raw: str, *, for_segment: int | None = None) -> dict:
    """Parse and validate rules posted by the builder; raise ValidationError with the reason."""
    try:
        tree = json.loads(raw or "")
    except json.JSONDecodeError:
        raise forms.ValidationError(
            _("The rules could not be read. Reload the page and build them again.")
        ) from None
    except RecursionError:
        # Python's parser gives up at about a thousand levels.
        raise forms.ValidationError(
            _("Groups can be nested at most %(depth)d deep.") % {"depth": MAX_DEPTH}
        ) from None
    try:
        return validate(tree, for_segment=for_segment)
    except RuleError as error:
        raise forms.ValidationError(str(error)) from None


class SegmentForm(forms.ModelForm):
    rules = forms.CharField(widget=forms.HiddenInput, label=_("Rules"))

    class Meta:
        model = Segment
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        error_messages = {
            "name": {
                "unique": _("A segment with this name already exists. Choose another name."),
                "required": _("Give the segment a name."),
            }
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["rules"] = json.dumps(self.instance.rules)

    def clean_rules(self) -> dict:
        return parse_rules(self.cleaned_data["rules"], for_segment=self.instance.pk)


class ProfileImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "UTF-8, with a header row. Columns named customer_id, email, first_name and "
            "last_name fill those fields; every other column becomes an attribute."
        ),
        error_messages={"required": _("Choose a CSV file to import.")},
    )
    customer_id_column = forms.CharField(label=_("Customer id column"), initial="customer_id")
    email_column = forms.CharField(label=_("Email column"), initial="email")
    first_name_column = forms.CharField(label=_("First name column"), initial="first_name")
    last_name_column = forms.CharField(label=_("Last name column"), initial="last_name")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not (upload.name or "").lower().endswith((".csv", ".txt")):
            raise forms.ValidationError(_("The file must be a CSV file (ending in .csv)."))
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _(
                    "The file is %(size)s; an import takes at most %(limit)s. "
                    "Split it into smaller files and import each."
                )
                % {
                    "size": filesizeformat(upload.size),
                    "limit": filesizeformat(settings.IMPORT_MAX_BYTES),
                }
            )
        upload.seek(0)
        sample = upload.read(SAMPLE_BYTES)
        upload.seek(0)
        if problem := encoding_problem(sample):
            raise forms.ValidationError(problem)
        return upload

    def clean(self):
        cleaned_data = super().clean()
        upload = cleaned_data.get("file")
        if upload is not None and not self.errors:
            # Only the header row is read: a file with more new columns than the field
            # catalogue allows is refused here, before it is stored and queued.
            upload.seek(0)
            try:
                check_csv_header(upload.file, self.column_map())
            except ImportFileError as error:
                self.add_error("file", str(error))
            finally:
                upload.seek(0)
        return cleaned_data

    def column_map(self) -> ColumnMap:
        data = self.cleaned_data
        return ColumnMap(
            customer_id=data["customer_id_column"],
            email=data["email_column"],
            first_name=data["first_name_column"],
            last_name=data["last_name_column"],
        )
