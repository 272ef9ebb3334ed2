"""The pre-flight guard: before a run sends anything, it compares what it is about to do with
the list it last left, and stops when that looks like damage.

The list's size is what the export's sync state holds as in the list (``SyncState.IN_LIST``):
the addresses the service confirmed after earlier runs. A run stops, as **Awaiting
approval**, when

- it would remove more than ``max_removal_percent`` of the list, or more than
  ``max_removals`` addresses (a broken segment that selects nobody makes a mirror export
  remove everyone); or
- it would add more than ``max_add_factor`` times the list's size. Only when the list is not
  empty: a first run (or a run to an empty list) never stops for its adds.

The thresholds are the export's own where set, else the defaults of Admin > System > Safety
(``GuardDefaults``). A run is checked once, right after its recipients are computed: an approved
run, and a run resumed after its worker was lost, are not checked again.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.translation import LaterText, shown, stored
from config.translation import gettext_later as _
from exports.models import Export, ExportRun, GuardDefaults, SyncState

#: How many of the addresses a held run would remove its page shows.
SAMPLE_SIZE = 20


@dataclass(frozen=True)
class Thresholds:
    max_removal_percent: int
    max_removals: int
    max_add_factor: int


@dataclass(frozen=True)
class Verdict:
    """What the guard found: the numbers, and why the run must wait (empty when it need not)."""

    list_size: int
    adds: int
    removals: int
    reasons: tuple[LaterText, ...] = ()

    @property
    def holds(self) -> bool:
        return bool(self.reasons)

    @property
    def size_after(self) -> int:
        return max(0, self.list_size + self.adds - self.removals)


def thresholds_for(export: Export, defaults: GuardDefaults | None = None) -> Thresholds:
    """The export's own thresholds, each one left blank replaced by the default."""
    defaults = defaults or GuardDefaults.load()

    def pick(own: int | None, default: int) -> int:
        return default if own is None else own

    return Thresholds(
        max_removal_percent=pick(export.guard_max_removal_percent, defaults.max_removal_percent),
        max_removals=pick(export.guard_max_removals, defaults.max_removals),
        max_add_factor=pick(export.guard_max_add_factor, defaults.max_add_factor),
    )


def list_size(export_id: int) -> int:
    """The addresses the service confirmed as in the export's list (one count by the key)."""
    return SyncState.objects.filter(export_id=export_id, state=SyncState.State.IN_LIST).count()


def judge(*, list_size: int, adds: int, removals: int, thresholds: Thresholds) -> Verdict:
    """Whether a run with these numbers must wait for approval, and why."""
    reasons: list[LaterText] = []
    if removals * 100 > thresholds.max_removal_percent * list_size:
        reasons.append(
            _(
                "It would remove %(removals)s addresses, more than %(percent)s%% of the "
                "%(size)s in the list."
            )
            % {
                "removals": f"{removals:,}",
                "percent": thresholds.max_removal_percent,
                "size": f"{list_size:,}",
            }
        )
    if removals > thresholds.max_removals:
        reasons.append(
            _(
                "It would remove %(removals)s addresses, more than the %(limit)s allowed "
                "without approval."
            )
            % {"removals": f"{removals:,}", "limit": f"{thresholds.max_removals:,}"}
        )
    if list_size and adds > thresholds.max_add_factor * list_size:
        reasons.append(
            _(
                "It would add %(adds)s addresses, more than %(factor)s times the %(size)s in "
                "the list."
            )
            % {
                "adds": f"{adds:,}",
                "factor": thresholds.max_add_factor,
                "size": f"{list_size:,}",
            }
        )
    return Verdict(list_size=list_size, adds=adds, removals=removals, reasons=tuple(reasons))


def check(run: ExportRun, *, adds: int, removals: int) -> Verdict:
    """The guard's verdict on a run whose recipients were just computed."""
    return judge(
        list_size=list_size(run.export_id),
        adds=adds,
        removals=removals,
        thresholds=thresholds_for(run.export),
    )


def stored_reasons(verdict: Verdict) -> str:
    """The reasons for ``ExportRun.held_because``: one stored message a line."""
    return "\n".join(stored(reason) for reason in verdict.reasons)


def shown_reasons(held_because: str) -> list[str]:
    """The reasons a run was held, in the reader's language."""
    return [shown(line) for line in held_because.splitlines() if line]
