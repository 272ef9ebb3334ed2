"""Whether a run would send anything at all, told without computing its recipients.

What a run sends depends on the export's settings, the members of its segments, the profiles
they read, the exclusions and consent records (Admin > Exclusions) and the export's sync state
(what the service confirmed). The first five are summed up in a fingerprint (the segments'
members versions, the profiles' stamp and the exclusions' summary are look-ups, not scans; the
consent records are counted by their index). The sync state
after a run that delivered everything is exactly what that run's recipients say, and only
runs of the export and erasures change it: a run makes itself the export's ``inputs_run``
before it computes its recipients, and an erasure clears it.

So when the export's ``inputs_run`` succeeded with nothing refused and has the fingerprint of
now, every member would be unchanged or skipped as before: the run copies those counts and the
list of skipped members, and ends.
"""

from __future__ import annotations

import hashlib
import json

from django.db import connection
from django.db.models import Count, Max

from exports import consent, runs
from exports.models import Exclusion, Export, ExportRun
from segments.membership import profiles_stamp
from segments.models import Profile, Segment

#: The settings of an export that decide what its runs send, and where.
SENDING_SETTINGS = (
    "connection_id",
    "list_id",
    "email_field",
    "first_name_field",
    "last_name_field",
    "sync_mode",
)


def inputs_fingerprint(export: Export) -> str:
    """A digest of the export's sending settings, its segments' members, the profiles and the
    exclusions (their count, newest id and last change tell any addition, change or removal;
    the excluded segments' members versions tell a change of their members), and the consent
    records that keep people out of it (under the rule: their count and newest id)."""
    inputs = {
        **_settings_and_exclusions(export),
        "segments": sorted(
            Segment.objects.filter(exports=export).values_list("pk", "members_version")
        ),
        "profiles": [*profiles_stamp(), *_profile_versions()],
    }
    if records := consent.fingerprint(export):  # absent when none: the digest is as before
        inputs["consent"] = records
    return _digest(inputs)


def _profile_versions() -> list:
    """How many profile rows there are and the sum of their versions (the transactions that
    wrote them, ``xmin``): any write to a profile, by the app or by hand in SQL without
    stamping ``updated_at``, changes it. One scan of the profiles (0.2 CPU-s per million)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(xmin::text::bigint)"
            f" FROM {connection.ops.quote_name(Profile._meta.db_table)}"
        )
        return list(cursor.fetchone())


def basis_fingerprint(export: Export) -> str:
    """A digest of what decides each member's row apart from its profile, its membership, the
    consent records and the sync state: the sending settings and the exclusions. Under the same
    digest, a run's members' table can be brought up to date from what changed in those
    (``exports.recipients``: the basis)."""
    return _digest(_settings_and_exclusions(export))


def _settings_and_exclusions(export: Export) -> dict:
    settings = [getattr(export, name) for name in SENDING_SETTINGS]
    if extras := _mapping_settings(export):  # absent when none: the digest is as before
        settings.append(extras)
    exclusions = Exclusion.objects.aggregate(
        count=Count("id"), newest=Max("id"), changed=Max("updated_at")
    )
    return {
        "exclusions": [
            exclusions,
            sorted(
                Segment.objects.filter(exclusions__isnull=False).values_list(
                    "pk", "members_version"
                )
            ),
        ],
        "settings": settings,
    }


def _digest(inputs: dict) -> str:
    encoded = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


def _mapping_settings(export: Export) -> dict:
    """What the export sends besides the address and names (``exports.mapping``), if any."""
    rows = [
        [row.profile_field, row.destination_key, row.destination_type, row.when_empty]
        for row in export.field_rows()
        if not row.is_builtin
    ]
    options = {
        "rows": rows,
        "tags": [export.fixed_tags, export.tags_field, export.remove_tags_on_leave],
        "status": export.new_subscriber_status,
        "consent": [export.consent_field, export.consent_default],
    }
    default = {"rows": [], "tags": [[], "", False], "status": "", "consent": ["", ""]}
    return {} if options == default else options


def last_delivery(run: ExportRun) -> ExportRun | None:
    """The export's last full run when it delivered everything it computed (nothing refused,
    nothing unaccounted), whatever changed since; else None. Its sync state is then exactly
    what its recipients said, so its members' table (kept as the basis) tells the next run
    every member's action except those of what changed. A retry and a run asked to resend
    everything compute every member."""
    export = run.export
    if run.retry_of_id is not None or export.resend_next_run or export.inputs_run_id is None:
        return None
    previous = ExportRun.objects.filter(pk=export.inputs_run_id).first()
    if (
        previous is None
        or previous.pk == run.pk
        or previous.status != ExportRun.Status.SUCCEEDED
        or previous.failed
        or runs.unaccounted(previous)
    ):
        return None
    return previous


def last_delivery_if_unchanged(run: ExportRun, fingerprint: str) -> ExportRun | None:
    """The export's last full run, when nothing the run would send changed since it, else None."""
    previous = last_delivery(run)
    if previous is None or previous.inputs_fingerprint != fingerprint:
        return None
    return previous


def computing_recipients(run: ExportRun) -> None:
    """The run (its fingerprint saved) is about to compute its recipients: it becomes the
    export's last full run. A retry sends only what another run had refused: it is nobody's.
    """
    full_run = run.retry_of_id is None
    Export.objects.filter(pk=run.export_id).update(inputs_run=run if full_run else None)


def sync_state_changed(export_ids) -> None:
    """Something other than a run changed these exports' sync state (an erasure): their next
    runs compute their recipients."""
    Export.objects.filter(pk__in=list(export_ids)).update(inputs_run=None)
