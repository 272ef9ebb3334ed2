"""Admin > Exclusions: addresses, domains and segments that no export ever sends.

The runs apply them in their recipients' SQL (``exports.recipients``): an excluded member is
never sent, in any mode or path (resend, retry, return), is listed among the run's skipped
members with the rule that excluded it and counted as "excluded"; a mirror export removes
excluded addresses from its list. Here: reading pasted lines, and every write, each recorded
in the audit log.

A domain matches an address's domain exactly (``example.org`` excludes ``ann@example.org``,
not ``ann@mail.example.org``): a subdomain is excluded only when it is listed itself, so that
excluding a shared provider's domain never reaches further than what was typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

import audit
from audit.actions import AuditAction
from exports.models import Exclusion
from exports.recipients import EMAIL_PATTERN
from segments.models import Segment

#: At most this many lines in one paste, and this many characters.
MAX_PASTED_LINES = 10_000
MAX_PASTED_CHARS = 1_000_000
#: At most this many excluded addresses and domains in all (each run joins them).
MAX_EXCLUSIONS = 100_000
#: An address is at most 320 characters (64 before the "@", 255 after), a domain 253.
MAX_ADDRESS_CHARS = 320
MAX_DOMAIN_CHARS = 253
#: Invalid lines named in one answer; the rest are counted.
INVALID_LINES_SHOWN = 20

_EMAIL = re.compile(EMAIL_PATTERN)
_DOMAIN_LABEL = re.compile(r"^[^\s@/\\:,;]{1,63}$")


class ExclusionError(Exception):
    """What is wrong with an addition, in words for the person who made it."""

    def __init__(self, messages: Sequence[str]):
        super().__init__("; ".join(str(message) for message in messages))
        self.messages = [str(message) for message in messages]


@dataclass(frozen=True)
class InvalidLine:
    number: int
    text: str


@dataclass
class Pasted:
    """Pasted lines read: the values normalised (in the order given, each once), the lines
    that are not valid, and how many lines repeated a value."""

    values: list[str] = field(default_factory=list)
    invalid: list[InvalidLine] = field(default_factory=list)
    duplicates: int = 0

    def invalid_messages(self, kind: str) -> list[str]:
        shown = [
            str(_line_message(kind)) % {"number": line.number, "text": line.text[:80]}
            for line in self.invalid[:INVALID_LINES_SHOWN]
        ]
        hidden = len(self.invalid) - len(shown)
        if hidden:
            shown.append(
                ngettext(
                    "…and %(count)d more invalid line.",
                    "…and %(count)d more invalid lines.",
                    hidden,
                )
                % {"count": hidden}
            )
        return shown


def _line_message(kind: str):
    if kind == Exclusion.Kind.DOMAIN:
        return _("Line %(number)d: “%(text)s” is not a domain (like example.org).")
    return _("Line %(number)d: “%(text)s” is not an email address.")


def normalised(kind: str, text: str) -> str:
    """An address or domain as stored and matched: trimmed and lower-case (a domain without a
    leading "@"); "" when it is not valid."""
    value = text.strip().lower()
    if kind == Exclusion.Kind.DOMAIN:
        value = value.removeprefix("@").rstrip(".")
        labels = value.split(".")
        valid = (
            len(value) <= MAX_DOMAIN_CHARS
            and len(labels) >= 2
            and all(_DOMAIN_LABEL.match(label) for label in labels)
        )
    else:
        valid = len(value) <= MAX_ADDRESS_CHARS and bool(_EMAIL.match(value))
    return value if valid else ""


def read_pasted(kind: str, text: str) -> Pasted:
    """Read pasted addresses or domains, one a line (blank lines ignored), numbered from 1."""
    pasted = Pasted()
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        value = normalised(kind, line)
        if not value:
            pasted.invalid.append(InvalidLine(number, line.strip()))
        elif value in seen:
            pasted.duplicates += 1
        else:
            seen.add(value)
            pasted.values.append(value)
    return pasted


def count_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


# Writes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Added:
    """What an addition did: how many were new, and how many were excluded already."""

    added: int
    already: int


@transaction.atomic
def exclusions_add(*, kind: str, values: Iterable[str], note: str = "", user=None) -> Added:
    """Exclude these addresses or domains (already normalised, each once: ``read_pasted``).

    Those already excluded are left as they are and counted. Refused as a whole (nothing
    added) when it would take the exclusions over ``MAX_EXCLUSIONS``. One audit entry lists
    every value added."""
    if kind not in (Exclusion.Kind.ADDRESS, Exclusion.Kind.DOMAIN):
        raise ValueError(f"not an address or domain kind: {kind}")
    values = list(values)
    existing = set(
        Exclusion.objects.filter(kind=kind, value__in=values).values_list("value", flat=True)
    )
    new = [value for value in values if value not in existing]
    # A bound against runaway input, not a quota: two pastes at once may pass it by one paste.
    total = Exclusion.objects.exclude(kind=Exclusion.Kind.SEGMENT).count()
    if total + len(new) > MAX_EXCLUSIONS:
        raise ExclusionError(
            [
                _(
                    "There can be at most %(limit)s excluded addresses and domains in all; "
                    "there are %(total)s, and this would add %(new)s. Remove some first, or "
                    "exclude a segment instead."
                )
                % {"limit": f"{MAX_EXCLUSIONS:,}", "total": f"{total:,}", "new": f"{len(new):,}"}
            ]
        )
    Exclusion.objects.bulk_create(
        [Exclusion(kind=kind, value=value, note=note, created_by=user) for value in new],
        ignore_conflicts=True,
        batch_size=2000,
    )
    if new:
        audit.record(
            AuditAction.EXCLUSION_ADDED,
            object_type="exclusion",
            object_label=_added_label(kind, new),
            after={"kind": kind, "values": new, "note": note},
        )
    return Added(added=len(new), already=len(values) - len(new))


def _added_label(kind: str, values: list[str]) -> str:
    if len(values) == 1:
        return values[0]
    if kind == Exclusion.Kind.DOMAIN:
        return ngettext("%(count)d domain", "%(count)d domains", len(values)) % {
            "count": len(values)
        }
    return ngettext("%(count)d address", "%(count)d addresses", len(values)) % {
        "count": len(values)
    }


def exclusion_add_segment(*, segment: Segment, note: str = "", user=None) -> Exclusion:
    """Exclude the members of ``segment`` (their addresses) from every export."""
    if Exclusion.objects.filter(segment=segment).exists():
        raise ExclusionError(
            [_("The segment “%(name)s” is excluded already.") % {"name": segment.name}]
        )
    exclusion = Exclusion.objects.create(
        kind=Exclusion.Kind.SEGMENT, segment=segment, note=note, created_by=user
    )
    audit.record(AuditAction.EXCLUSION_ADDED, exclusion)
    return exclusion


def exclusion_update(*, exclusion: Exclusion, note: str) -> Exclusion:
    """Change an exclusion's note (what it excludes is fixed: remove it and add another)."""
    before = audit.snapshot(exclusion)
    exclusion.note = note
    exclusion.save(update_fields=["note", "updated_at"])
    audit.record(AuditAction.EXCLUSION_UPDATED, exclusion, before=before)
    return exclusion


def exclusion_delete(*, exclusion: Exclusion) -> None:
    """Remove an exclusion: the next runs send the people it kept out again (those who are
    in an export's segments)."""
    audit.record(
        AuditAction.EXCLUSION_REMOVED, exclusion, before=audit.snapshot(exclusion), after=None
    )
    exclusion.delete()
