"""A run's SQL: who it sends to, and what the service confirmed (the export's sync state).

Who a run sends to is the union of the export's segments, de-duplicated by normalised email,
computed once per run in set-based SQL into two tables of the run's own (``RecipientTable``):

- the **removals** (mirror mode): the addresses in the list that no member has any more,
  numbered in address order;
- the **members**: one row per member, at ``MEMBERS_FROM`` + its profile id, with what the run
  does with it: add, update, return (re-add an address a mirror run removed), leave alone
  (unchanged), skip (with the reason) or exclude (with the Admin > Exclusions rule: no export
  sends the address, and a mirror export removes it from its list); in mirror mode also one
  row, without a position, per address in the list that no member has (``LEFT``): the
  removals are numbered from those and from the excluded addresses in the list.

The engine streams removals, then members, in batches, and resumes after a position.
Skipped members are written to ``ExportRunFailure`` with their reason: nobody is dropped
silently.

The tables are one pair per run, dropped when it ends (deleting a million rows from a shared
table costs seconds), but for the members of a run that delivered everything: they are kept as
the export's **basis**, from which its next run computes only what changed
(``build_changed``). The members' table is unlogged on PostgreSQL: it can be computed again
from the segments and the sync state, with everyone at the same position, so it costs no
write-ahead log. The removals are computed once per run and kept (see ``queue_removals``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import cast

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BigIntegerField,
    Expression,
    F,
    Func,
    JSONField,
    Q,
    TextField,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat, Lower, Trim
from django.utils.translation import gettext_noop

from exports import consent, mapping, runs, unchanged
from exports.models import Exclusion, Export, ExportRun, ExportRunFailure, Refusal, SyncState
from segments import changes
from segments.models import Profile, SegmentMember
from segments.rules import BUILTIN_FIELDS

logger = logging.getLogger(__name__)

# Deliberately loose: the service validates strictly and reports per record; this only keeps
# out what can never be an address.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

ADD, UPDATE, RETURN, REMOVE, UNCHANGED = "add", "update", "return", "remove", "unchanged"
# In the members' table of a mirror run: an address in the list that no member has any more.
# Not a member, and never sent: ``queue_removals`` numbers these as the run's removals.
LEFT = "left"
# The service refused these very fields for a reason that will not change by itself
# (``Refusal``): not sent again, and counted as failed with that reason.
REFUSED = "refused"
SENT_ACTIONS = (ADD, UPDATE, RETURN)
SKIP_MISSING_EMAIL = "missing_email"
SKIP_INVALID_EMAIL = "invalid_email"
SKIP_DUPLICATE_EMAIL = "duplicate_email"
SKIP_OPTED_OUT = "opted_out"
# Why a member is skipped: no address, an unusable one, one another member already has, or
# an address that opted out at the service (never re-subscribed, not retried every run).
# Stored in English; pages and downloads show them in the reader's language (``failure_reason``).
SKIP_REASONS = {
    SKIP_MISSING_EMAIL: gettext_noop("The profile has no email address."),
    SKIP_INVALID_EMAIL: gettext_noop("The email address is not valid."),
    SKIP_DUPLICATE_EMAIL: gettext_noop(
        "Another profile with the same email address is sent instead."
    ),
    SKIP_OPTED_OUT: gettext_noop("The person opted out at the service; they are not sent again."),
}
EXCLUDED_ADDRESS = "excluded_address"
EXCLUDED_DOMAIN = "excluded_domain"
EXCLUDED_SEGMENT = "excluded_segment"
EXCLUDED_CONSENT = "excluded_consent"
# Which rule of Admin > Exclusions keeps a member out: listed among the skipped members with
# its reason, and counted apart ("excluded"). A consent record (``exports.consent``) keeps out
# a person who unsubscribed, bounced, ... at a connection.
EXCLUDED_REASONS = {
    EXCLUDED_ADDRESS: gettext_noop("The address is excluded from every export (Exclusions)."),
    EXCLUDED_DOMAIN: gettext_noop(
        "The address's domain is excluded from every export (Exclusions)."
    ),
    EXCLUDED_SEGMENT: gettext_noop(
        "The address belongs to a member of an excluded segment (Exclusions)."
    ),
    EXCLUDED_CONSENT: gettext_noop(
        "The person unsubscribed or bounced at a connection (consent read back)."
    ),
}
_TABLE_NAME = "export_run_{}_recipients"
_REMOVALS_NAME = "export_run_{}_removals"
# The members' table a run that delivered everything leaves for the next (see ``BASIS``).
_BASIS_NAME = "export_run_{}_basis"
_BASIS_PATTERN = re.compile(r"^export_run_(\d+)_basis$")
_TABLE_PATTERN = re.compile(r"^export_run_(\d+)_(recipients|removals)$")
# Members come after every removal: removals are numbered from one, and no list holds 2**48.
MEMBERS_FROM = 1 << 48
# The rows the engine reads, as a literal for the partial index (our own constants).
_TO_PUSH = "action IN ({})".format(", ".join(f"'{action}'" for action in SENT_ACTIONS))


@dataclass(frozen=True)
class RecipientCounts:
    members: int
    recipients: int
    skipped: int
    unchanged: int = 0
    to_remove: int = 0
    added: int = 0
    updated: int = 0
    refused: int = 0
    excluded: int = 0


class FieldsHash(Func):
    """A short hash of the fields sent, to tell a changed record from an unchanged one.

    On PostgreSQL the 64-bit ``hashtextextended``, which is much cheaper than ``md5``; a
    collision would only make one changed record wait for the next change or a resend.
    """

    function = "MD5"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="(hashtextextended(%(expressions)s, 0))::text",
            **extra_context,
        )


def field_value(name: str) -> Expression | F:
    """A profile field (built-in column or JSON attribute) as text."""
    if name in BUILTIN_FIELDS:
        return F(name)
    return Cast(KeyTextTransform(name, "attributes"), TextField())


def members_of(export: Export):
    segment_ids = list(export.segments.values_list("pk", flat=True))
    return Profile.objects.filter(
        pk__in=SegmentMember.objects.filter(segment_id__in=segment_ids).values("profile_id")
    )


def _with_normalised_email(export: Export):
    return members_of(export).annotate(
        normalised_email=Lower(Trim(Coalesce(field_value(export.email_field), Value(""))))
    )


class RecipientTable:
    """The tables of one run's removals and members, and what the run does with each."""

    def __init__(self, run: ExportRun):
        self.run_id = run.pk
        self.name = connection.ops.quote_name(_TABLE_NAME.format(run.pk))
        self.removals = connection.ops.quote_name(_REMOVALS_NAME.format(run.pk))
        self.basis = connection.ops.quote_name(_BASIS_NAME.format(run.pk))

    def has_basis(self) -> bool:
        """Whether the run was computed from the basis of the run before (its members' table
        then holds only what changed, and its basis every member)."""
        return _BASIS_NAME.format(self.run_id) in connection.introspection.table_names()

    def exists(self, *, members: bool = True) -> bool:
        """Whether the removals table, and the members' table too unless told, exist."""
        names = connection.introspection.table_names()
        needed = (_REMOVALS_NAME, _TABLE_NAME) if members else (_REMOVALS_NAME,)
        return all(name.format(self.run_id) in names for name in needed)

    def intact(self, run: ExportRun) -> bool:
        """Whether both tables are there and the members' table still holds what was built.

        A crash of PostgreSQL leaves an unlogged table in place but empty, so existing is not
        enough: a run that counted members when it built the table must find at least one row
        (a crash empties the whole table, never part of it)."""
        if not self.exists():
            return False
        if not run.profiles_total:
            return True
        # Computed from a basis, the members' table holds only what changed (maybe nothing);
        # the basis (unlogged too) holds every member.
        every_member = self.basis if self.has_basis() else self.name
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {every_member})")
            return bool(cursor.fetchone()[0])

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}, {self.removals}, {self.basis}")

    def end(self, run: ExportRun, *, keep_basis: bool) -> None:
        """Drop the run's tables, keeping its members as the export's basis when told (the
        run delivered everything): the whole members' table of a full computation is
        renamed, the basis a computation from a basis brought up to date stays. Other bases
        of the export are dropped: only the last delivery's can serve."""
        if not keep_basis or not self.exists():
            self.drop()
            return
        with connection.cursor() as cursor:
            if self.has_basis():
                cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
            else:
                cursor.execute(f"ALTER TABLE {self.name} RENAME TO {self.basis}")
            cursor.execute(f"DROP TABLE IF EXISTS {self.removals}")
        _drop_bases(run.export_id, keeping=run.pk)
        forget_seen_changes()

    def page(self, after_position: int, size: int, *, removing: bool = False) -> list[tuple]:
        """(position, email, customer id, first name, last name, action, hash, extras) of the
        next recipients to send, or to remove; ``extras`` are the other mapped values, tags and
        consent as JSON (``exports.mapping``), or None."""
        table, actions = (self.removals, (REMOVE,)) if removing else (self.name, SENT_ACTIONS)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT position, email, customer_id, first_name, last_name, action, fields_hash,"
                f" extras FROM {table} WHERE position > %s AND action IN ({_placeholders(actions)})"
                " ORDER BY position LIMIT %s",
                (after_position, *actions, size),
            )
            return cursor.fetchall()

    def sample(self, actions: tuple[str, ...], size: int) -> list[dict]:
        table = self.removals if actions == (REMOVE,) else self.name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT email, customer_id, first_name, last_name, action, extras FROM {table}"
                f" WHERE action IN ({_placeholders(actions)}) ORDER BY position LIMIT %s",
                (*actions, size),
            )
            columns = ("email", "customer_id", "first_name", "last_name", "action", "extras")
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def acknowledged(
        self, after: int, up_to: int, *, refused: bool = True, extras: bool = False
    ) -> tuple[str, tuple]:
        """A query (and its parameters) for the rows sent or removed between two positions that
        the service did not refuse: what the sync state records once the checkpoint passed.

        Only the tables the range reaches are read, and the run's failures only when it has
        ``refused`` any record (else reading its skipped members' rows for nothing: 0.1 s of
        each write for 60,000 of them). ``NOT IN`` rather than ``NOT EXISTS``: the
        refusals are hashed once whatever the planner believes. With an estimate of one
        removal, the anti-join scanned every refusal of the run once per removal (30 s for
        9,301 removals and 59,200 skipped members).

        With ``extras`` the rows carry their ``extras`` too (for the tags sent, read only by
        the exports that keep them).
        """
        parts: list[str] = []
        params: list[str] = []
        columns = "email, fields_hash, action, position" + (", extras" if extras else "")
        if after < MEMBERS_FROM:
            parts.append(f"SELECT {columns} FROM {self.removals}")
        if up_to >= MEMBERS_FROM:
            parts.append(
                f"SELECT {columns} FROM {self.name} WHERE action IN ({_placeholders(SENT_ACTIONS)})"
            )
            params.extend(SENT_ACTIONS)
        sql = (
            f"SELECT r.email, r.fields_hash, r.action{', r.extras' if extras else ''}"
            f" FROM ({' UNION ALL '.join(parts)}) r "
            "WHERE r.position > %s AND r.position <= %s"
        )
        if not refused:
            return sql, (*params, after, up_to)
        sql += (
            f" AND r.email NOT IN (SELECT lower(f.email) FROM {ExportRunFailure._meta.db_table} f"
            " WHERE f.run_id = %s AND f.skipped = %s AND f.warning = %s)"
        )
        return sql, (*params, after, up_to, self.run_id, False, False)


def tune_for_bulk(cursor) -> None:
    """Settings for the rest of the transaction, for statements over a million rows (on
    PostgreSQL): memory to hash them, and no JIT compilation: the estimated costs pass the
    thresholds for full optimisation, and compiling a statement that runs once takes longer
    than running it."""
    if connection.vendor == "postgresql":
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")


def _analyze(cursor, table_name: str) -> None:
    """Statistics for a table just filled (PostgreSQL), for the joins and pages that follow.
    A small sample is enough to tell a hash join from an index scan, and is quick to take."""
    if connection.vendor == "postgresql":
        cursor.execute("SET LOCAL default_statistics_target = 10")
        cursor.execute(f"ANALYZE {table_name}")
        cursor.execute("RESET default_statistics_target")


def drop_orphaned_tables(active_run_ids) -> list[str]:
    """Drop the tables of runs that are no longer active, and the bases no export's next run
    can start from (of runs that are neither active nor an export's last full run); return
    their names."""
    active = set(active_run_ids)
    names = connection.introspection.table_names()
    orphaned = [
        name
        for name in names
        if (match := _TABLE_PATTERN.match(name)) and int(match.group(1)) not in active
    ]
    bases = {int(match.group(1)): name for name in names if (match := _BASIS_PATTERN.match(name))}
    if bases:
        # An export's last full run's basis serves its next run; while a run of the export
        # is active, it may be computing from one.
        busy = ExportRun.objects.filter(pk__in=active).values("export_id")
        serving = active | set(
            ExportRun.objects.filter(pk__in=list(bases))
            .filter(Q(export__inputs_run_id=F("pk")) | Q(export_id__in=busy))
            .values_list("pk", flat=True)
        )
        orphaned += [name for run_id, name in bases.items() if run_id not in serving]
    with connection.cursor() as cursor:
        for name in orphaned:
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(name)}")
    forget_seen_changes()
    return orphaned


def build_recipients(run: ExportRun, basis: ExportRun | None = None) -> RecipientCounts:
    """Fill both of the run's tables and list its skipped members; idempotent for a run.

    Given ``basis`` (the export's last full run, when it delivered everything:
    ``unchanged.last_delivery``) and its members' table kept, only what changed since is
    computed (``build_changed``)."""
    counts = None
    if basis is not None and usable_basis(run, basis):
        counts = build_changed(run, basis)
    if counts is None:
        counts = build_members(run)
    return replace(counts, to_remove=queue_removals(run))


def usable_basis(run: ExportRun, basis: ExportRun) -> bool:
    """Whether the members' table ``basis`` left is there, whole (unlogged: a crash of
    PostgreSQL empties it), was computed under the export's settings and exclusions of now,
    and the export's sync state is still what ``basis`` left (nothing confirmed since it
    ended: a scan of the sync state, a tenth of a CPU-second per million addresses), and no
    statement since changed too many profiles for the log to list them (``segments.changes``).
    """
    if connection.vendor != "postgresql" or basis.finished_at is None:
        return False
    name = _BASIS_NAME.format(basis.pk)
    if name not in connection.introspection.table_names():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT obj_description(%s::regclass, 'pg_class'),"
            f" EXISTS (SELECT 1 FROM {connection.ops.quote_name(name)}),"
            f" EXISTS (SELECT 1 FROM {SyncState._meta.db_table}"
            " WHERE export_id = %s AND confirmed_at > %s)",
            (name, run.export_id, basis.finished_at),
        )
        note, filled, confirmed_since = cursor.fetchone()
        seen = _seen_if_current(run.export, note)
        if seen is None:
            return False
        changed_sql, changed_params = changes.changed_since_sql(seen)
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM ({changed_sql}) c WHERE c.profile_id IS NULL)",
            changed_params,
        )
        everyone_may_have_changed = cursor.fetchone()[0]
    return (
        (filled or not basis.profiles_total)
        and not confirmed_since
        and not (everyone_may_have_changed)
    )


def _note(export: Export, seen: changes.Seen) -> str:
    """What a members' table was computed under, kept as its comment: the export's settings
    and exclusions (``unchanged.basis_fingerprint``), its segments, and what it saw of the
    profiles."""
    return json.dumps(
        {
            "inputs": unchanged.basis_fingerprint(export),
            "segments": _segment_ids(export),
            "seen": seen.as_json(),
        }
    )


def _seen_if_current(export: Export, note: str | None) -> changes.Seen | None:
    """What a members' table saw of the profiles, when it was computed under the export's
    settings, exclusions and segments of now; else None (or for a table computed before the
    profiles' log)."""
    fields = _read_note(note)
    if fields.get("inputs") != unchanged.basis_fingerprint(export) or fields.get(
        "segments"
    ) != _segment_ids(export):
        return None
    return changes.Seen.from_json(fields.get("seen"))


def _read_note(note: str | None) -> dict:
    try:
        fields = json.loads(note or "")
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


def _segment_ids(export: Export) -> list[int]:
    return sorted(export.segments.values_list("pk", flat=True))


def forget_seen_changes() -> None:
    """Forget the changes of profiles that every members' table (a run's, or a basis a next
    run may start from) has seen (``segments.changes``)."""
    changes.forget_seen(_seen_by_tables)


def _seen_by_tables() -> list[changes.Seen]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT obj_description(oid, 'pg_class') FROM pg_class WHERE relkind = 'r'"
            " AND relname ~ '^export_run_[0-9]+_(recipients|basis)$' AND pg_table_is_visible(oid)"
        )
        seen = [changes.Seen.from_json(_read_note(note).get("seen")) for (note,) in cursor]
    return [one for one in seen if one is not None]


def _drop_bases(export_id: int, *, keeping: int) -> None:
    """Drop the export's bases but ``keeping``'s."""
    bases = {
        int(match.group(1)): name
        for name in connection.introspection.table_names()
        if (match := _BASIS_PATTERN.match(name))
    }
    if not bases:
        return
    runs_of_export = ExportRun.objects.filter(export_id=export_id, pk__in=list(bases))
    with connection.cursor() as cursor:
        for run_id in runs_of_export.exclude(pk=keeping).values_list("pk", flat=True):
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(bases[run_id])}")


def removes_leavers(run: ExportRun) -> bool:
    """Whether the run removes the addresses no member has any more: mirror mode, not a retry."""
    return run.export.sync_mode == Export.SyncMode.MIRROR and not run.retry_of_id


@transaction.atomic
def build_members(run: ExportRun) -> RecipientCounts:
    """Fill the run's members table and list its skipped members.

    One parallel scan of the members computes each one's normalised email, a hash of the
    fields sent and, compared with the export's sync state, its action. Then the few members
    that share an address with a member of lower id are marked as duplicates (cheaper than
    ranking every member by address), and the skipped and excluded are listed and counted.
    """
    table = RecipientTable(run)
    ExportRunFailure.objects.filter(run=run, skipped=True).delete()
    with connection.cursor() as cursor:
        tune_for_bulk(cursor)
        # A basis this run brought up to date before is stale now.
        cursor.execute(f"DROP TABLE IF EXISTS {table.basis}")
        seen = changes.seen_now() if connection.vendor == "postgresql" else None
        _create_table(cursor, table, run)
        if seen is not None:
            cursor.execute(f"COMMENT ON TABLE {table.name} IS %s", (_note(run.export, seen),))
        _analyze(cursor, table.name)
        _index_positions(cursor, table)
        _mark_duplicates(cursor, table)
        _list_skipped(cursor, table, run)
        _list_still_refused(cursor, table, run)
        cursor.execute(f"SELECT action, count(*) FROM {table.name} GROUP BY action")
        by_action = dict(cursor.fetchall())
    return _counts(by_action)


@transaction.atomic
def build_changed(run: ExportRun, basis: ExportRun) -> RecipientCounts:
    """Fill the run's members' table with what changed since ``basis`` (the export's last
    full run, which delivered everything), list its skipped members and bring the basis up to
    date; it becomes the run's.

    The sync state is then what ``basis``'s members' table says: a member whose profile,
    membership, address's namesakes and consent records did not change is unchanged (or
    skipped or excluded as before). The profiles written since the basis saw them, by any
    means, are in the log the database's triggers keep (``segments.changes``), and only the
    members that changed, joined or share an address with one that did, left or whose consent
    changed are computed as ``build_members`` does, with the leavers among the addresses they
    held. The settings and exclusions are those of the basis (``usable_basis``); when they
    change, everyone is computed again.
    """
    table = RecipientTable(run)
    old = connection.ops.quote_name(_BASIS_NAME.format(basis.pk))
    logged = connection.ops.quote_name(f"export_run_{run.pk}_logged")
    changed = connection.ops.quote_name(f"export_run_{run.pk}_changed")
    fresh = connection.ops.quote_name(f"export_run_{run.pk}_fresh")
    affected = connection.ops.quote_name(f"export_run_{run.pk}_affected")
    recomputed = connection.ops.quote_name(f"export_run_{run.pk}_recomputed")
    namesakes = connection.ops.quote_name(f"export_run_{run.pk}_namesakes")
    ExportRunFailure.objects.filter(run=run, skipped=True).delete()
    members_sql, members_params = _members_query(run.export)
    columns = ", ".join(_MEMBER_COLUMNS)
    with connection.cursor() as cursor:
        tune_for_bulk(cursor)
        cursor.execute(f"DROP TABLE IF EXISTS {table.basis}")
        cursor.execute("SELECT obj_description(%s::regclass, 'pg_class')", (old,))
        seen_by_basis = _seen_if_current(run.export, cursor.fetchone()[0])
        if seen_by_basis is None:  # usable_basis read it: it is the same table
            raise RuntimeError(f"The basis {old} was computed under other inputs.")
        # What the basis brought up to date will have seen: taken before anything is read.
        seen = changes.seen_now()
        # Which members joined, left or changed: the profiles logged since the basis saw them
        # that are members now (looked up by key) or were then (no member's values computed:
        # that is most of the full computation).
        changed_sql, changed_params = changes.changed_since_sql(seen_by_basis)
        cursor.execute(
            f"CREATE TEMPORARY TABLE {logged} ON COMMIT DROP AS SELECT %s + c.profile_id AS"
            " position, CASE WHEN EXISTS (SELECT 1"
            f" FROM {Profile._meta.db_table} p WHERE p.id = c.profile_id) AND EXISTS (SELECT 1"
            f" FROM {SegmentMember._meta.db_table} s WHERE s.segment_id = ANY(%s)"
            " AND s.profile_id = c.profile_id) THEN c.profile_id END AS id"
            f" FROM (SELECT DISTINCT profile_id FROM ({changed_sql}) changes) c",
            (MEMBERS_FROM, _segment_ids(run.export), *changed_params),
        )
        _analyze(cursor, logged)  # a few: hashed, and the basis read once to find them
        # ``basis_row``: where the row is in the basis, to delete it there by its address.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {changed} ON COMMIT DROP AS SELECT l.position, l.id,"
            " b.email AS old_email, b.action AS old_action, b.customer_id AS old_customer_id,"
            f" b.ctid AS basis_row FROM {logged} l LEFT JOIN {old} b ON b.position = l.position"
            " WHERE l.id IS NOT NULL OR b.action IS NOT NULL"
        )
        _analyze(cursor, changed)
        # Their values now (the members that are still members).
        cursor.execute(
            f"CREATE TEMPORARY TABLE {fresh} ON COMMIT DROP AS SELECT * FROM ({members_sql}) m"
            f" WHERE m.id IN (SELECT id FROM {changed} WHERE id IS NOT NULL)",
            members_params,
        )
        consent_sql, consent_params = _consent_changed(run.export, old)
        cursor.execute(
            f"CREATE TEMPORARY TABLE {affected} ON COMMIT DROP AS"
            f" SELECT old_email AS email FROM {changed} WHERE old_email <> ''"
            f" UNION SELECT normalised_email FROM {fresh}"
            f" WHERE normalised_email <> '' UNION {consent_sql}",
            consent_params,
        )
        _analyze(cursor, affected)
        # Who is computed again: those that changed or joined, and every member holding an
        # address one of them holds or held, or whose consent changed (an address's members
        # are all there: who is its duplicate, who its leaver, is decided among them).
        cursor.execute(
            f"CREATE TEMPORARY TABLE {namesakes} ON COMMIT DROP AS SELECT b.version,"
            " b.position - %s AS id, b.customer_id, b.raw_email, b.email AS normalised_email,"
            " b.first_name AS mapped_first_name, b.last_name AS mapped_last_name,"
            f" b.fields_hash, b.extras AS mapped_extras, b.position, b.action,"
            f" b.ctid AS basis_row FROM {old} b"
            f" WHERE b.email IN (SELECT email FROM {affected}) AND b.position IS NOT NULL"
            f" AND NOT EXISTS (SELECT 1 FROM {changed} c WHERE c.position = b.position)",
            (MEMBERS_FROM,),
        )
        again = f"SELECT {columns} FROM {fresh} UNION ALL SELECT {columns} FROM {namesakes}"
        _create_table(cursor, table, run, members=(again, ()))
        if removes_leavers(run):
            # The addresses the changed held that no member holds any more (all who hold one
            # are in the table) and that are in the list: each looked up by the sync state's
            # key (OFFSET 0: not the hash join the planner prefers, which reads every address
            # of the export).
            cursor.execute(
                f"INSERT INTO {table.name} (email, action) SELECT s.email, %s"
                f" FROM (SELECT DISTINCT old_email FROM {changed} c WHERE old_email <> ''"
                f" AND NOT EXISTS (SELECT 1 FROM {table.name} t WHERE t.email = c.old_email)) c"
                " CROSS JOIN LATERAL (SELECT email"
                f" FROM {SyncState._meta.db_table} WHERE export_id = %s AND email = c.old_email"
                " AND state = %s OFFSET 0) s",
                (LEFT, run.export_id, SyncState.State.IN_LIST),
            )
        _analyze(cursor, table.name)
        _index_positions(cursor, table)
        _mark_duplicates(cursor, table)
        # What the basis said of those computed again (their old rows).
        cursor.execute(
            f"CREATE TEMPORARY TABLE {recomputed} ON COMMIT DROP AS"
            f" SELECT position, old_action AS action, old_customer_id AS customer_id, basis_row"
            f" FROM {changed} WHERE old_action IS NOT NULL"
            f" UNION ALL SELECT position, action, customer_id, basis_row FROM {namesakes}"
        )
        _analyze(cursor, recomputed)
        # The basis's others are skipped as the basis's run listed them, and listed before
        # those computed again.
        failures = ExportRunFailure._meta.db_table
        cursor.execute(
            f"INSERT INTO {failures} (run_id, customer_id, email, code, reason, skipped)"
            f" SELECT %s, customer_id, email, code, reason, skipped FROM {failures}"
            " WHERE run_id = %s AND skipped = %s"
            f" AND customer_id NOT IN (SELECT customer_id FROM {recomputed}) ORDER BY id",
            (run.pk, basis.pk, True),
        )
        _list_skipped(cursor, table, run)
        _list_still_refused(cursor, table, run)
        cursor.execute(f"SELECT action, count(*) FROM {table.name} GROUP BY action")
        by_action = dict(cursor.fetchall())
        computed_again = sum(count for action, count in by_action.items() if action != LEFT)
        cursor.execute(f"SELECT action, count(*) FROM {recomputed} GROUP BY action")
        before = _counts(dict(cursor.fetchall()))
        # The basis brought up to date becomes this run's (the old one's rows are no more).
        # Found by their addresses in the table, not by reading all of it. The leavers of a
        # full computation's table (no position) stay: every reader of a basis skips them.
        cursor.execute(
            f"DELETE FROM {old} WHERE ctid = ANY(ARRAY(SELECT basis_row FROM {recomputed}))"
        )
        row = "position, email, raw_email, customer_id, first_name, last_name, extras,"
        row += " version, fields_hash, action"
        cursor.execute(
            f"INSERT INTO {old} ({row}) SELECT {row} FROM {table.name} WHERE position IS NOT NULL"
        )
        cursor.execute(f"ALTER TABLE {old} RENAME TO {table.basis}")
        cursor.execute(f"COMMENT ON TABLE {table.basis} IS %s", (_note(run.export, seen),))
        logger.info(
            "Export run %s: computed %s members again from the basis of run %s",
            run.pk,
            computed_again,
            basis.pk,
        )
    # The basis's others: as its run counted them, the delivered among them unchanged now.
    counts = _counts(by_action)
    kept_members = basis.profiles_total - before.members
    kept_skipped = basis.skipped - before.skipped
    kept_excluded = basis.excluded - before.excluded
    return replace(
        counts,
        members=counts.members + kept_members,
        skipped=counts.skipped + kept_skipped,
        excluded=counts.excluded + kept_excluded,
        unchanged=counts.unchanged + kept_members - kept_skipped - kept_excluded,
    )


def _consent_changed(export: Export, basis: str) -> tuple[str, tuple]:
    """A query (and its parameters) for the addresses of the basis's members whose consent
    exclusion changed: a consent record now and not excluded by it then (unless kept out by
    something that comes first, or opted out at this export's service), or excluded by one
    then and none now. The rule of Admin > Exclusions is applied as ``_exclusions`` does."""
    kept_anyway = (EXCLUDED_ADDRESS, EXCLUDED_SEGMENT, EXCLUDED_DOMAIN, SKIP_OPTED_OUT)
    records = consent.excluded_addresses_sql(export)
    if records is None:
        return (
            f"SELECT email FROM {basis} WHERE action = %s AND position IS NOT NULL",
            (EXCLUDED_CONSENT,),
        )
    records_sql, records_params = records
    return (
        f"SELECT b.email FROM {basis} b LEFT JOIN ({records_sql}) c ON c.email = b.email"
        " WHERE b.position IS NOT NULL AND CASE WHEN c.email IS NULL THEN b.action = %s"
        f" ELSE b.action NOT IN ({_placeholders((*kept_anyway, EXCLUDED_CONSENT))}) END",
        (*records_params, EXCLUDED_CONSENT, *kept_anyway, EXCLUDED_CONSENT),
    )


def _index_positions(cursor, table: RecipientTable) -> None:
    """The index the engine pages the recipients by, when there are any (else nothing is
    paged). Made before any row of the table is updated (``_mark_duplicates``): an index made
    over rows updated in place is usable only by transactions younger than it, so that any
    older one still running in the cluster (a long import, a backup, a test run) makes every
    page a scan and a sort of the whole table (160 ms a page, 150 CPU-s per million)."""
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table.name} WHERE {_TO_PUSH})")
    if cursor.fetchone()[0]:
        index = connection.ops.quote_name(f"{_TABLE_NAME.format(table.run_id)}_position")
        cursor.execute(f"CREATE INDEX {index} ON {table.name} (position) WHERE {_TO_PUSH}")


def _counts(by_action: dict) -> RecipientCounts:
    """The counts of members by action (the leavers are no members: the removals count them)."""
    by_action = {action: count for action, count in by_action.items() if action != LEFT}
    return RecipientCounts(
        members=sum(by_action.values()),
        recipients=sum(by_action.get(action, 0) for action in SENT_ACTIONS),
        skipped=sum(by_action.get(code, 0) for code in SKIP_REASONS),
        unchanged=by_action.get(UNCHANGED, 0),
        added=by_action.get(ADD, 0) + by_action.get(RETURN, 0),
        updated=by_action.get(UPDATE, 0),
        refused=by_action.get(REFUSED, 0),
        excluded=sum(by_action.get(code, 0) for code in EXCLUDED_REASONS),
    )


@transaction.atomic
def queue_removals(run: ExportRun) -> int:
    """Fill the run's removals table: in mirror mode, the addresses in the list (by the sync
    state) that no member has, found with the members (``LEFT``), and those only excluded
    members have (Admin > Exclusions); return how many. Empty in other modes and for retries.

    Computed once per run, and kept in an ordinary (logged) table: a resumed run carries on
    after its checkpoint among the same removals, numbered as before, even though the sync
    state no longer lists those it already removed.
    """
    table = RecipientTable(run)
    left_or_excluded = f"SELECT email FROM {table.name} WHERE action = %s"
    left_or_excluded_params: tuple[str | int, ...] = (LEFT,)
    if removes_leavers(run) and (
        Exclusion.objects.exists() or consent.records_for(run.export).exists()
    ):
        # An excluded member's address is removed when it is in the list (the excluded are
        # few: joined to the sync state by its key).
        left_or_excluded += (
            f" UNION SELECT m.email FROM {table.name} m JOIN {SyncState._meta.db_table} s"
            " ON s.export_id = %s AND s.email = m.email AND s.state = %s"
            f" WHERE m.action IN ({_placeholders(EXCLUDED_REASONS)})"
        )
        left_or_excluded_params += (
            run.export_id,
            SyncState.State.IN_LIST,
            *EXCLUDED_REASONS,
        )
    postgresql = connection.vendor == "postgresql"
    extras, extras_join = ("NULL::jsonb" if postgresql else "NULL"), ""
    if removes_leavers(run) and mapping.keeps_sent_tags(run.export):
        # The leavers lose the tags they were last sent too (few rows, joined by the key).
        extras = (
            "jsonb_build_object('tags', s.tags)"
            if postgresql
            else "json_object('tags', json(s.tags))"
        )
        extras_join = (
            f" LEFT JOIN {SyncState._meta.db_table} s"
            " ON s.export_id = %s AND s.email = removed.email"
        )
        left_or_excluded_params += (run.export_id,)
    with connection.cursor() as cursor:
        if table.exists(members=False):
            cursor.execute(f"SELECT count(*) FROM {table.removals}")
            return cursor.fetchone()[0]
        cursor.execute(
            f"CREATE TABLE {table.removals} AS SELECT"
            " row_number() OVER (ORDER BY removed.email) AS position, removed.email,"
            f" '' AS customer_id, '' AS first_name, '' AS last_name, '{REMOVE}' AS action,"
            f" '' AS fields_hash, {extras}"
            f" AS extras FROM ({left_or_excluded}) removed{extras_join}",
            left_or_excluded_params,
        )
        index = connection.ops.quote_name(f"{_REMOVALS_NAME.format(run.pk)}_position")
        cursor.execute(f"CREATE INDEX {index} ON {table.removals} (position)")
        cursor.execute(f"SELECT count(*) FROM {table.removals}")
        return cursor.fetchone()[0]


def _members_query(export: Export) -> tuple[str, tuple]:
    """The export's members (``id``, ``customer_id``, ``raw_email``, ``normalised_email``,
    ``mapped_first_name``, ``mapped_last_name``, ``fields_hash``, ``mapped_extras``).

    The other mapped values, tags and consent (``extras``) are hashed after the names; an
    export that maps none hashes exactly what it did before they existed."""
    plan = mapping.send_plan(export)
    extras, extras_params = mapping.extras_sql(plan)
    hashed: list[Expression | F] = [
        F("normalised_email"),
        Value("\x1f"),
        F("mapped_first_name"),
        Value("\x1f"),
        F("mapped_last_name"),
    ]
    if plan.has_extras:
        hashed += [Value("\x1f"), Cast(F("mapped_extras"), TextField())]
    members = _with_normalised_email(export).annotate(
        raw_email=Coalesce(field_value(export.email_field), Value("")),
        mapped_first_name=_mapped(export.first_name_field),
        mapped_last_name=_mapped(export.last_name_field),
        # Our own SQL (exports.mapping); every name and value in it is a parameter.
        mapped_extras=RawSQL(extras, extras_params, output_field=JSONField()),  # noqa: S611
        fields_hash=FieldsHash(Concat(*hashed, output_field=TextField())),
        version=_profile_version(),
    )
    members_sql, params = members.order_by().values(*_MEMBER_COLUMNS).query.sql_with_params()
    return members_sql, tuple(params)


def _profile_version() -> Expression:
    """Which version of the profile's row was read: the transaction that wrote it (``xmin``,
    PostgreSQL's own), which any change of the row, by any means, replaces."""
    if connection.vendor != "postgresql":
        return Value(0, output_field=BigIntegerField())
    table = connection.ops.quote_name(Profile._meta.db_table)
    return RawSQL(f"{table}.xmin::text::bigint", (), output_field=BigIntegerField())  # noqa: S611


_MEMBER_COLUMNS = (
    "version",
    "id",
    "customer_id",
    "raw_email",
    "normalised_email",
    "mapped_first_name",
    "mapped_last_name",
    "fields_hash",
    "mapped_extras",
)


def _create_table(
    cursor, table: RecipientTable, run: ExportRun, members: tuple[str, tuple] | None = None
) -> None:
    """One row per member: its address, the fields sent, their hash and its action, from what
    the service last confirmed for the address (joined in once, here).

    ``members`` (a query of ``_MEMBER_COLUMNS``) are those of the export unless given: a run
    computed from a basis passes what changed, and finds its leavers itself."""
    export = run.export
    members_sql, params = members or _members_query(export)
    resend = export.resend_next_run or run.retry_of_id is not None
    regex = connection.operators["regex"]  # type: ignore[attr-defined]  # every backend has it
    usable = f"m.normalised_email {regex % '%s'}"
    retry_filter, retry_params = "", cast(tuple[object, ...], ())
    if run.retry_of_id:
        # "Retry failed records": only the addresses the service refused in that run.
        retry_filter = (
            f" WHERE NOT ({usable} AND m.normalised_email NOT IN ("
            f"SELECT lower(email) FROM {ExportRunFailure._meta.db_table}"
            " WHERE run_id = %s AND skipped = %s AND warning = %s))"
        )
        retry_params = (EMAIL_PATTERN, run.retry_of_id, False, False)
    where, where_params = retry_filter, retry_params
    sync_join = "LEFT JOIN"
    if removes_leavers(run) and members is None:
        # The addresses in the list that no member has come out of the same join as the
        # members (hashing the sync state once), instead of a second anti-join of every
        # address against every member. Not erased people's addresses: the erasure deletes
        # them at the service, which a removal does not (exports/erasures.py).
        sync_join = "FULL JOIN"
        where, where_params = " WHERE m.id IS NOT NULL OR s.state = %s", (SyncState.State.IN_LIST,)
    postgresql = connection.vendor == "postgresql"
    unlogged = "UNLOGGED " if postgresql else ""
    # OFFSET 0 keeps PostgreSQL from inlining the members' query, which would compute the
    # normalised email and the hash again wherever they are used.
    fence = " OFFSET 0" if postgresql else ""
    excluded_case, excluded_case_params, excluded_joins, excluded_join_params = _exclusions(export)
    cursor.execute(f"DROP TABLE IF EXISTS {table.name}")
    cursor.execute(
        f"CREATE {unlogged}TABLE {table.name} AS SELECT %s + m.id AS position,"
        " COALESCE(m.normalised_email, s.email) AS email, m.raw_email, m.customer_id,"
        " m.mapped_first_name AS first_name, m.mapped_last_name AS last_name,"
        " m.mapped_extras AS extras, m.version,"
        " m.fields_hash, CASE WHEN m.id IS NULL THEN %s"
        # Fields the service refused for good are not sent again (unless resent or retried);
        # an opt-out stays an opt-out.
        # Excluded people are never sent, on any path (resent, retried, returning).
        f" {excluded_case}WHEN r.fields_hash = m.fields_hash AND NOT %s"
        " AND (s.state IS NULL OR s.state <> %s) THEN %s"
        # An address with a sync state passed the check when it was sent: the pattern is
        # matched only for the others, which on a re-run are few.
        " WHEN s.state IS NULL THEN CASE"
        f" WHEN m.normalised_email = '' THEN %s WHEN NOT ({usable}) THEN %s ELSE %s END"
        # An erased person imported again is new to the list.
        " WHEN s.state = %s THEN %s WHEN s.state = %s THEN %s WHEN s.state = %s THEN %s"
        " WHEN s.fields_hash <> m.fields_hash OR %s THEN %s ELSE %s END AS action"
        f" FROM ({members_sql}{fence}) AS m {sync_join} (SELECT email, fields_hash, state"
        f" FROM {SyncState._meta.db_table} WHERE export_id = %s) s"
        " ON s.email = m.normalised_email"
        f" LEFT JOIN {Refusal._meta.db_table} r"
        f" ON r.export_id = %s AND r.email = m.normalised_email{excluded_joins}{where}",
        (
            MEMBERS_FROM,
            LEFT,
            *excluded_case_params,
            resend,
            SyncState.State.OPTED_OUT,
            REFUSED,
            SKIP_MISSING_EMAIL,
            EMAIL_PATTERN,
            SKIP_INVALID_EMAIL,
            ADD,
            SyncState.State.ERASING,
            ADD,
            SyncState.State.REMOVED,
            RETURN,
            SyncState.State.OPTED_OUT,
            SKIP_OPTED_OUT,
            resend,
            UPDATE,
            UNCHANGED,
            *params,
            export.pk,
            export.pk,
            *excluded_join_params,
            *where_params,
        ),
    )


def _exclusions(export: Export) -> tuple[str, tuple, str, tuple]:
    """The CASE branches (and parameters) that exclude members, and the joins (and parameters)
    they read; nothing for a kind of exclusion there is none of, so that an installation
    without exclusions (or consent records) runs the statement it ran before them.

    A consent record excludes the address unless the export's own sync state holds it as
    opted out already: that member stays skipped as opted out at this export's service."""
    kinds = set(Exclusion.objects.order_by().values_list("kind", flat=True).distinct())
    case, joins = "", ""
    case_params: tuple[object, ...] = ()
    join_params: tuple[object, ...] = ()
    if kinds & {Exclusion.Kind.ADDRESS, Exclusion.Kind.SEGMENT}:
        excluded_sql, excluded_params = _excluded_addresses(export)
        case += "WHEN x.rule IS NOT NULL THEN x.rule "
        joins += f" LEFT JOIN ({excluded_sql}) x ON x.email = m.normalised_email"
        join_params += excluded_params
    if Exclusion.Kind.DOMAIN in kinds:
        case += "WHEN d.id IS NOT NULL THEN %s "
        case_params += (EXCLUDED_DOMAIN,)
        joins += (
            f" LEFT JOIN {Exclusion._meta.db_table} d"
            f" ON d.kind = %s AND d.value = {_domain_of('m.normalised_email')}"
        )
        join_params += (Exclusion.Kind.DOMAIN,)
    if (records := consent.excluded_addresses_sql(export)) is not None:
        records_sql, records_params = records
        case += "WHEN c.email IS NOT NULL AND (s.state IS NULL OR s.state <> %s) THEN %s "
        case_params += (SyncState.State.OPTED_OUT, EXCLUDED_CONSENT)
        joins += f" LEFT JOIN ({records_sql}) c ON c.email = m.normalised_email"
        join_params += records_params
    return case, case_params, joins, join_params


def _excluded_addresses(export: Export) -> tuple[str, tuple]:
    """A query (and its parameters) for the excluded addresses, one row each with the rule
    that excludes it (``email``, ``rule``): the excluded addresses, and the addresses (by the
    export's email field) of the members of excluded segments. An address excluded both ways
    is excluded as an address."""
    segment_members = (
        Profile.objects.filter(
            pk__in=SegmentMember.objects.filter(
                segment_id__in=Exclusion.objects.filter(kind=Exclusion.Kind.SEGMENT).values(
                    "segment_id"
                )
            ).values("profile_id")
        )
        .annotate(excluded_email=Lower(Trim(Coalesce(field_value(export.email_field), Value("")))))
        .order_by()
        .values("excluded_email")
    )
    members_sql, members_params = segment_members.query.sql_with_params()
    sql = (
        "SELECT e.email, min(e.rule) AS rule FROM ("
        f"SELECT value AS email, %s AS rule FROM {Exclusion._meta.db_table} WHERE kind = %s"
        f" UNION ALL SELECT s.excluded_email, %s FROM ({members_sql}) s"
        " WHERE s.excluded_email <> '') e GROUP BY e.email"
    )
    # "excluded_address" sorts before "excluded_segment": min() prefers the address.
    params = (
        EXCLUDED_ADDRESS,
        Exclusion.Kind.ADDRESS,
        EXCLUDED_SEGMENT,
        *members_params,
    )
    return sql, params


def _domain_of(column: str) -> str:
    """SQL for the part of an address after its "@" (an address has one: the pattern)."""
    if connection.vendor == "postgresql":
        return f"split_part({column}, '@', 2)"
    return f"substr({column}, instr({column}, '@') + 1)"


def _mark_duplicates(cursor, table: RecipientTable) -> None:
    """Of the members sharing a usable address, the one with the lowest id is sent.

    Members sharing an address share its usability, so a usable member with a namesake of
    lower id is a duplicate. They are found by a query first, which PostgreSQL runs in
    parallel (an UPDATE never does), and then marked. Leavers (no position) are nobody's
    namesake: no member has their address.
    """
    # An excluded address is excluded for every member that has it.
    unusable = (SKIP_MISSING_EMAIL, SKIP_INVALID_EMAIL, LEFT, *EXCLUDED_REASONS)
    duplicates = connection.ops.quote_name(f"export_run_{table.run_id}_duplicates")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {duplicates} AS SELECT m.position FROM {table.name} m"
        f" WHERE m.action NOT IN ({_placeholders(unusable)}) AND EXISTS (SELECT 1"
        f" FROM {table.name} earlier WHERE earlier.email = m.email"
        " AND earlier.position < m.position)",
        unusable,
    )
    _analyze(cursor, duplicates)
    cursor.execute(
        f"UPDATE {table.name} SET action = %s"
        f" WHERE position IN (SELECT position FROM {duplicates})",
        (SKIP_DUPLICATE_EMAIL,),
    )
    cursor.execute(f"DROP TABLE {duplicates}")


def _list_skipped(cursor, table: RecipientTable, run: ExportRun) -> None:
    reasons = {**SKIP_REASONS, **EXCLUDED_REASONS}
    skip_codes = tuple(reasons)
    cursor.execute(
        f"INSERT INTO {ExportRunFailure._meta.db_table}"
        " (run_id, customer_id, email, code, reason, skipped) "
        "SELECT %s, customer_id, substr(raw_email, 1, 320), action, CASE action"
        f" {' '.join('WHEN %s THEN %s' for _code in skip_codes)} END, %s "
        f"FROM {table.name} WHERE action IN ({_placeholders(skip_codes)}) ORDER BY position",
        (
            run.pk,
            *(value for code in skip_codes for value in (code, reasons[code])),
            True,
            *skip_codes,
        ),
    )


def _list_still_refused(cursor, table: RecipientTable, run: ExportRun) -> None:
    """List the members whose fields the service refused for good among the run's failures,
    with the service's code and reason (again, should the table be built a second time).

    The refusals of the members this run sends (changed since, resent or retried) are
    forgotten: the service answers for them again."""
    if not Refusal.objects.filter(export_id=run.export_id).exists():
        return
    refusals = Refusal._meta.db_table
    cursor.execute(
        f"DELETE FROM {refusals} WHERE export_id = %s AND email IN ("
        f"SELECT email FROM {table.name} WHERE {_TO_PUSH})",
        (run.export_id,),
    )
    failures = ExportRunFailure._meta.db_table
    cursor.execute(
        f"DELETE FROM {failures} WHERE run_id = %s AND skipped = %s"
        f" AND lower(email) IN (SELECT email FROM {table.name} WHERE action = %s)",
        (run.pk, False, REFUSED),
    )
    cursor.execute(
        f"INSERT INTO {failures} (run_id, customer_id, email, code, reason, skipped) "
        "SELECT %s, m.customer_id, substr(m.raw_email, 1, 320), r.code, r.reason, %s"
        f" FROM {table.name} m JOIN {Refusal._meta.db_table} r"
        " ON r.export_id = %s AND r.email = m.email WHERE m.action = %s ORDER BY m.position",
        (run.pk, False, run.export_id, REFUSED),
    )


def copy_skipped(previous: ExportRun, run: ExportRun) -> None:
    """List the members ``previous`` skipped as skipped by ``run`` too (nothing changed)."""
    table = ExportRunFailure._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (run_id, customer_id, email, code, reason, skipped)"
            f" SELECT %s, customer_id, email, code, reason, skipped FROM {table}"
            " WHERE run_id = %s AND skipped = %s ORDER BY id",
            (run.pk, previous.pk, True),
        )


def _placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


def _mapped(name: str) -> Expression:
    """A mapped profile field as text, or an empty string when the export maps none."""
    if not name:
        return Value("")
    return Coalesce(field_value(name), Value(""))


# What the service confirmed: the export's sync state --------------------------------------------


class AcknowledgedAdds:
    """The addresses a run added past ``after``, as its engine counted them when the checkpoint
    passed their batches: each address and its fields hash, in ``COPY``'s text format.

    A range of adds only (a first run) then goes into the sync state by ``COPY``, sorted by
    address, instead of reading the run's table again and inserting row by row: 1.7 against
    4.1 CPU-s of PostgreSQL for 940,101 addresses. The lines stop (``lines`` None) at the
    first row that is no add (an update, a return, a removal: those are upserted from the
    table) or past ``LIMIT`` rows (memory); ``take`` starts them again at the checkpoint.
    From ``WRITE_AT`` rows on they are ``due``: a fast run (100,000 adds a second) passed the
    limit between two writes by the clock, and was read from the table.
    """

    LIMIT = 250_000
    WRITE_AT = 100_000

    def __init__(self, after: int):
        self.after = after
        self.lines: list[str] | None = []

    def record(self, rows: list[tuple], left_out: set[str]) -> None:
        """Keep the rows of a batch the checkpoint passed (as the engine reads them: the
        address second, the action sixth, the hash seventh), but those in ``left_out`` (the
        service refused them, or holds them as opted out: not recorded as in the list)."""
        if self.lines is None:
            return
        if len(self.lines) + len(rows) > self.LIMIT or any(row[5] != ADD for row in rows):
            self.lines = None
            return
        emails = [row[1] for row in rows]
        if _COPY_ESCAPED.search("".join(emails)):
            emails = [_COPY_ESCAPED.sub(_copy_escape, email) for email in emails]
        self.lines.extend(
            f"{email}\t{row[6]}"
            for email, row in zip(emails, rows, strict=True)
            if row[1] not in left_out
        )

    def take(self, up_to: int) -> AcknowledgedAdds:
        """What was kept (everything acknowledged up to the checkpoint ``up_to``), and start
        again from there."""
        taken = AcknowledgedAdds(self.after)
        taken.lines = self.lines
        self.after, self.lines = up_to, []
        return taken

    def covers(self, after: int) -> bool:
        return self.lines is not None and self.after == after

    @property
    def due(self) -> bool:
        return self.lines is not None and len(self.lines) >= self.WRITE_AT


def acknowledged_adds(run: ExportRun) -> AcknowledgedAdds | None:
    """Where the engine keeps the adds it counts from the run's checkpoint on, when they can
    be copied into the sync state: on PostgreSQL, for exports that do not keep the tags sent
    (those are read from the run's table)."""
    if connection.vendor != "postgresql" or mapping.keeps_sent_tags(run.export):
        return None
    return AcknowledgedAdds(run.checkpoint)


# COPY's text format: these characters in a value need a backslash escape.
_COPY_ESCAPED = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _copy_escape(match: re.Match) -> str:
    return _COPY_ESCAPES[match.group()]


def write_sync_state(
    run: ExportRun, token: str, after: int, up_to: int, adds: AcknowledgedAdds | None = None
) -> None:
    """Record what the service acknowledged between two positions, in bulk.

    Every recipient up to the checkpoint was acknowledged; those the service refused have a
    failure row of this run and are left out. Writing in bulk, sorted by address, costs a
    fraction of writing batch by batch; a worker lost before this runs leaves nothing wrong
    behind, only work for the run that resumes. Given the ``adds`` the engine kept for the
    range (all of it adds), they are copied; else the range is read from the run's table.
    Safe on any thread.
    """
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        tune_for_bulk(cursor)  # room to hash the run's refusals even when there are many
        # An address the run adds has no sync state yet (one run per export at a time), so a
        # plain insert does, cheaper than an upsert; should one exist after all, the upsert
        # takes over.
        try:
            with transaction.atomic():
                if adds is not None and adds.covers(after):
                    _copy_adds(cursor, run, adds)
                else:
                    cursor.execute(*_sync_state_insert(run, after, up_to, upsert_adds=False))
        except IntegrityError:
            cursor.execute(*_sync_state_insert(run, after, up_to, upsert_adds=True))
        runs.record_synced(run, token, up_to)
    logger.info(
        "Export run %s: sync state up to position %s in %.1fs",
        run.pk,
        up_to,
        time.monotonic() - started,
    )


def _copy_adds(cursor, run: ExportRun, adds: AcknowledgedAdds) -> None:
    """``COPY`` the adds into the sync state, as the plain insert would write them: sorted by
    address (byte order, for locality in the key's index), confirmed now by the run."""
    lines = cast(list[str], adds.lines)
    if not lines:
        return
    lines.sort()
    cursor.execute("SELECT CURRENT_TIMESTAMP")
    confirmed_at = cursor.fetchone()[0].isoformat()
    after_line = f"\t{run.export_id}\t{SyncState.State.IN_LIST}\t{run.pk}\t{confirmed_at}\n"
    columns = "email, fields_hash, export_id, state, confirmed_by_id, confirmed_at"
    with (
        connection.wrap_database_errors,  # a key that exists after all: IntegrityError
        cursor.cursor.copy(f"COPY {SyncState._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        for start in range(0, len(lines), 10_000):
            copy.write(after_line.join(lines[start : start + 10_000]) + after_line)


def record_opted_out(
    states: list[SyncState], export: Export | None = None, consent_states=None
) -> None:
    """Remember addresses the service refused because the person opted out there; and, given
    the export and each address's consent state, keep them as consent records too, so that
    no other export sends them (``exports.consent``). Call it inside a transaction."""
    SyncState.objects.bulk_create(
        states,
        update_conflicts=True,
        unique_fields=["export", "email"],
        update_fields=["fields_hash", "state", "confirmed_by", "confirmed_at"],
    )
    if export is not None and consent_states:
        consent.record_opt_outs(export, consent_states)


def record_refusals(refusals: list[Refusal]) -> None:
    """Remember fields the service refused for a reason that will not change by itself."""
    Refusal.objects.bulk_create(
        refusals,
        update_conflicts=True,
        unique_fields=["export", "email"],
        update_fields=["fields_hash", "code", "reason", "refused_by", "refused_at"],
    )


@transaction.atomic
def analyze_sync_state() -> None:
    """Fresh statistics after a run wrote many addresses (PostgreSQL): the next run's plan
    depends on how many the export has, and autovacuum would tell the planner only later.
    A small sample tells that as well as the default one, at a tenth of the cost."""
    with connection.cursor() as cursor:
        _analyze(cursor, SyncState._meta.db_table)


def _sync_state_insert(
    run: ExportRun, after: int, up_to: int, *, upsert_adds: bool
) -> tuple[str, tuple]:
    """The statement that records the acknowledged rows: the adds inserted, the others upserted.

    One statement reads the range once (a sequential scan of the run's table, as PostgreSQL
    plans it, which two statements did twice), then writes the adds and the others.
    ``run.failed`` counts every record the run's failures list as refused (never less, on any
    thread: it is saved with the failures, before the checkpoint that passes them)."""
    keeps_tags = mapping.keeps_sent_tags(run.export)
    acknowledged, acknowledged_params = RecipientTable(run).acknowledged(
        after, up_to, refused=run.failed > 0, extras=keeps_tags
    )
    # The tags sent from the tags field, for the leavers to lose (none once removed).
    tags_column, tags_value, tags_update = "", "", ""
    if keeps_tags:
        tags_column = ", tags"
        tags_value = ", CASE WHEN a.action = %s THEN NULL ELSE a.extras -> 'tags' END"
        tags_update = " tags = excluded.tags,"
    # Sorted for locality in the key's index. Byte order serves that as well as the database's
    # collation, and sorts faster.
    bytewise = ' COLLATE "C"' if connection.vendor == "postgresql" else ""
    insert = (
        f"INSERT INTO {SyncState._meta.db_table}"
        f" (export_id, email, fields_hash, state, confirmed_by_id, confirmed_at{tags_column}) "
        "SELECT %s, a.email, a.fields_hash,"
        f" CASE WHEN a.action = %s THEN %s ELSE %s END, %s, CURRENT_TIMESTAMP{tags_value} "
    )
    insert_params: tuple[object, ...] = (
        run.export_id,
        REMOVE,
        SyncState.State.REMOVED,
        SyncState.State.IN_LIST,
        run.pk,
        *((REMOVE,) if keeps_tags else ()),
    )
    # An opt-out is never undone: an address recorded as opted out (by this run, as it
    # removed the person, or before) stays so whatever the run acknowledged for it.
    upsert = (
        " ON CONFLICT (export_id, email) DO UPDATE SET fields_hash = excluded.fields_hash,"
        f" state = excluded.state,{tags_update} confirmed_by_id = excluded.confirmed_by_id,"
        f" confirmed_at = excluded.confirmed_at WHERE {SyncState._meta.db_table}.state <> %s"
    )
    sql = (
        f"WITH acknowledged AS MATERIALIZED ({acknowledged}), added AS ("
        f"{insert}FROM acknowledged a WHERE a.action = %s ORDER BY a.email{bytewise}"
        f"{upsert if upsert_adds else ''}) "
        f"{insert}FROM acknowledged a WHERE a.action <> %s ORDER BY a.email{bytewise}{upsert}"
    )
    params = (
        *acknowledged_params,
        *insert_params,
        ADD,
        *((SyncState.State.OPTED_OUT,) if upsert_adds else ()),
        *insert_params,
        ADD,
        SyncState.State.OPTED_OUT,
    )
    return sql, params
