"""The exports honour the consent records (``segments.ConsentRecord``): whom they keep out.

A person who unsubscribed, bounced, complained, was cleaned or suppressed at a connection has
a consent record (read back from the service, or written here when a run learns it at push
time). One rule in Admin > Exclusions (``ConsentRule``) says whom a record keeps out: the
person is excluded from every export (the default), or only from the exports of the
connection the record came from. A record of a state the service keeps for itself
(``OTHER_CONNECTIONS_ONLY``: Ortto's "email permission off") never keeps a person out of that
connection's own exports. A record whose connection was deleted keeps the person out
of every export under either rule (the safe side). The runs apply this in their recipients'
SQL (``exports.recipients``), as they do the other exclusions: never sent on any path, listed
among the skipped with ``excluded_consent`` and counted as excluded; a mirror export removes
the person from its list. Nothing here ever lifts a record: we never re-subscribe anyone.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import Q, QuerySet

import audit
from audit.actions import AuditAction
from core.consent import OTHER_CONNECTIONS_ONLY, Channel, ConsentState
from exports.models import ConsentRule, Export
from segments.models import ConsentRecord


def records_for(export: Export, *, scope: str | None = None) -> QuerySet[ConsentRecord]:
    """The e-mail consent records that keep people out of ``export`` under the rule (``scope``,
    or the rule saved in Admin > Exclusions)."""
    scope = scope or ConsentRule.load().scope
    records = ConsentRecord.objects.filter(channel=Channel.EMAIL)
    if scope == ConsentRule.Scope.SAME_CONNECTION:
        records = records.filter(Q(connection__isnull=True) | Q(connection_id=export.connection_id))
    # "Email permission off" at the export's own connection is that service's to keep.
    if export.connection_id is None:
        return records
    return records.exclude(state__in=OTHER_CONNECTIONS_ONLY, connection_id=export.connection_id)


def excluded_addresses_sql(export: Export) -> tuple[str, tuple] | None:
    """A query (and its parameters) for the addresses consent records keep out of ``export``
    (one row each, ``email``), or None when there are none: a run then reads the statement it
    read before consent records existed."""
    records = records_for(export)
    if not records.exists():
        return None
    sql, params = records.order_by().values("email").distinct().query.sql_with_params()
    return sql, tuple(params)


def fingerprint(export: Export) -> list | None:
    """What the consent records that apply to ``export`` add to its inputs' digest (how many,
    the newest): None when there are none, so that the digest is as it was before them."""
    records = records_for(export)
    newest = records.order_by("-id").values_list("id", flat=True).first()
    if newest is None:
        return None
    return [records.count(), newest]


def rule_save(*, scope: str, user=None) -> ConsentRule:
    """Change whom the consent records keep out, from the next run on (audited)."""
    if scope not in ConsentRule.Scope.values:
        raise ValueError(f"not a consent rule scope: {scope}")
    rule = ConsentRule.load()
    before = audit.snapshot(rule)
    rule.scope = scope
    rule.updated_by = user
    rule.save()
    audit.record(AuditAction.CONSENT_RULE_UPDATED, rule, before=before)
    return rule


def state_for(code: str, states: Mapping[str, str]) -> str:
    """The consent state an opted-out code of a backend stands for (``Backend.opted_out_states``),
    unsubscribed unless the backend says cleaned, bounced, ..."""
    return states.get(code, ConsentState.UNSUBSCRIBED)


def record_opt_outs(export: Export, states: Mapping[str, str]) -> None:
    """Keep the addresses a run of ``export`` found opted out at the service (address: state,
    the addresses normalised) as consent records of the export's connection and list, so
    that, under the default rule, no other export sends them either. One statement; those
    recorded already are left as they are. Call it inside the transaction that records the
    export's own sync state for them."""
    if not states or export.connection_id is None:
        return
    name = export.connection.display_name if export.connection else ""
    ConsentRecord.objects.bulk_create(
        [
            ConsentRecord(
                email=email,
                channel=Channel.EMAIL,
                state=state,
                connection_id=export.connection_id,
                connection_name=name[:200],
                list_id=export.list_id[:100],
                reason=PUSH_TIME_REASON,
            )
            for email, state in sorted(states.items())
        ],
        ignore_conflicts=True,
    )


#: Stored as the record's reason (English, as the services' own reasons are).
PUSH_TIME_REASON = "Found opted out at the service when an export sent or removed the person."
