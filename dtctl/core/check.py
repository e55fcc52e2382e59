"""Would this history still replay against this code? The pure part of ``dtctl replay-check``.

:func:`first_mismatch` replays a history event by event, exactly as the engine does, and stops at the
first event the code no longer matches (a :class:`~dtctl.errors.NonDeterminismError` at run time).
Unlike an episode it does not let a recorded end overrule the mismatch, so a finished instance that the
new code would replay differently is found too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from dtctl.core.execution import EndReason, Execution
from dtctl.core.failure import qualified_name
from dtctl.core.handlers import TABLES
from dtctl.core.history import HistoryEvent
from dtctl.core.replay import Orchestrator, as_definition
from dtctl.errors import NonDeterminismError

__all__ = ["Mismatch", "first_mismatch"]

_NONDETERMINISM = qualified_name(NonDeterminismError)
# The message Execution.mismatch writes: "task N: history recorded X but the code now Y".
_MESSAGE = re.compile(r"^task (-?\d+): history recorded (.*) but the code now (.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where a replay would fail: the task id, what history recorded there and what the code does now."""

    task_id: int | None
    recorded: str | None
    now: str | None
    message: str


def first_mismatch(orchestrator: Orchestrator, events: Iterable[HistoryEvent]) -> Mismatch | None:
    """The first non-determinism replaying ``events`` with ``orchestrator`` meets, or None."""
    execution = Execution(as_definition(orchestrator), TABLES)
    execution.context.set_replaying(True)
    for event in events:
        execution.handlers[type(event)](execution, event)
        ending = execution.ending
        failure = None if ending is None or ending.reason is not EndReason.STOPPED else ending.failure
        if failure is not None and failure.error_type == _NONDETERMINISM:
            return _parsed(failure.message)
    return None


def _parsed(message: str) -> Mismatch:
    found = _MESSAGE.match(message)
    if found is None:
        return Mismatch(None, None, None, message)
    return Mismatch(int(found.group(1)), found.group(2), found.group(3), message)
