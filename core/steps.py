"""A test made of named steps (a connection's, a source's): each passed, failed or skipped, with
a message a person can act on. After the first failure the remaining steps are skipped."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from config.translation import LaterText

    #: A message a person reads: translated now, or stored and translated when shown.
    Message: TypeAlias = LaterText | str


class StepStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepResult:
    """One named step, its status and its message; ``error`` is what made it fail."""

    name: Message
    status: StepStatus
    message: Message
    error: Exception | None = None

    @property
    def passed(self) -> bool:
        return self.status == StepStatus.PASSED

    @property
    def failed(self) -> bool:
        return self.status == StepStatus.FAILED

    def as_json(self) -> dict[str, str]:
        return {"name": str(self.name), "status": str(self.status), "message": str(self.message)}


class StepSkipped(Exception):
    """Raised by a step that has nothing to check; the message says why."""

    def __init__(self, message: Message):
        super().__init__(message)
        self.message = message


def run_steps(
    steps: Sequence[tuple[Message, Callable[[], Message]]],
    *,
    skip_message: Message,
    failure: type[Exception],
) -> list[StepResult]:
    """Run named steps in order. A step returns its success message, raises ``StepSkipped``,
    or raises ``failure`` (an error with a ``message`` for a person); after the first failure
    the remaining steps are skipped with ``skip_message``."""
    results: list[StepResult] = []
    failed = False
    for name, step in steps:
        if failed:
            results.append(StepResult(name, StepStatus.SKIPPED, skip_message))
            continue
        try:
            message = step()
        except StepSkipped as skipped:
            results.append(StepResult(name, StepStatus.SKIPPED, skipped.message))
        except failure as error:
            reason = getattr(error, "message", str(error))
            results.append(StepResult(name, StepStatus.FAILED, reason, error))
            failed = True
        else:
            results.append(StepResult(name, StepStatus.PASSED, message))
    return results
