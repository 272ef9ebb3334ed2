"""The forms of Admin > Exclusions, which the API uses too (``exports.exclusion_apis``)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from exports.exclusions import (
    MAX_PASTED_CHARS,
    MAX_PASTED_LINES,
    count_lines,
    normalised,
    read_pasted,
)
from exports.models import ConsentRule, Exclusion
from segments.models import Segment

NOTE_HELP = _("Optional: why, for the next administrator (at most 200 characters).")


class PastedExclusionsForm(forms.Form):
    """Addresses or domains, one a line: normalised (trimmed, lower-case), repeats folded,
    and refused as a whole when a line is not valid, naming each such line."""

    lines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
        max_length=MAX_PASTED_CHARS,
    )
    note = forms.CharField(max_length=200, required=False, help_text=NOTE_HELP)

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind == Exclusion.Kind.DOMAIN:
            self.fields["lines"].label = _("Domains")
            self.fields["lines"].help_text = _(
                "One a line, like example.org. A domain matches exactly: example.org does not "
                "exclude mail.example.org; add each subdomain to exclude it too."
            )
        else:
            self.fields["lines"].label = _("Addresses")
            self.fields["lines"].help_text = _(
                "One a line, at most %(count)s lines. Upper and lower case are the same; "
                "repeated lines count once."
            ) % {"count": f"{MAX_PASTED_LINES:,}"}

    def clean_lines(self):
        text = self.cleaned_data["lines"]
        lines = count_lines(text)
        if lines > MAX_PASTED_LINES:
            raise forms.ValidationError(
                _("At most %(limit)s lines at a time; this has %(count)s. Paste them in parts."),
                code="too_many_lines",
                params={"limit": f"{MAX_PASTED_LINES:,}", "count": f"{lines:,}"},
            )
        pasted = read_pasted(self.kind, text)
        if pasted.invalid:
            raise forms.ValidationError(
                [
                    forms.ValidationError(message, code="invalid_line")
                    for message in pasted.invalid_messages(self.kind)
                ]
            )
        if not pasted.values:
            raise forms.ValidationError(_("Nothing to add: every line is empty."), code="empty")
        self.cleaned_data["pasted"] = pasted
        return text


class ExclusionForm(forms.Form):
    """One exclusion of any kind (the API's create): an address or domain in ``value``, or a
    segment."""

    kind = forms.ChoiceField(choices=Exclusion.Kind.choices)
    value = forms.CharField(max_length=400, required=False)
    segment = forms.ModelChoiceField(queryset=Segment.objects.all(), required=False)
    note = forms.CharField(max_length=200, required=False)

    def clean(self):
        cleaned = super().clean()
        kind, value, segment = cleaned.get("kind"), cleaned.get("value"), cleaned.get("segment")
        if kind == Exclusion.Kind.SEGMENT:
            if segment is None:
                self.add_error("segment", _("Choose the segment whose members to exclude."))
            if value:
                self.add_error("value", _("A segment exclusion has no address or domain."))
        elif kind:
            if segment is not None:
                self.add_error("segment", _("Only a segment exclusion names a segment."))
            cleaned["value"] = normalised(kind, value or "")
            if not cleaned["value"]:
                message = (
                    _("Enter a domain, like example.org.")
                    if kind == Exclusion.Kind.DOMAIN
                    else _("Enter a valid email address.")
                )
                self.add_error("value", message)
        return cleaned


class SegmentExclusionForm(forms.Form):
    segment = forms.ModelChoiceField(
        label=_("Segment"),
        queryset=Segment.objects.filter(exclusions__isnull=True).order_by("name"),
        help_text=_(
            "Its members' addresses are excluded from every export, as its members change."
        ),
    )
    note = forms.CharField(max_length=200, required=False, help_text=NOTE_HELP)


class ExclusionNoteForm(forms.Form):
    note = forms.CharField(max_length=200, required=False, help_text=NOTE_HELP)


class ConsentRuleForm(forms.Form):
    """Whom a consent record keeps out: every export, or that connection's exports only."""

    scope = forms.ChoiceField(
        label=_("People who unsubscribed or bounced"),
        choices=ConsentRule.Scope.choices,
        widget=forms.RadioSelect,
        help_text=_(
            "A record whose connection was removed excludes the person from every export "
            "either way. Nobody is ever subscribed again by us."
        ),
        error_messages={
            "required": _("Choose whom a consent record excludes."),
            "invalid_choice": _("Choose one of the two rules."),
        },
    )
