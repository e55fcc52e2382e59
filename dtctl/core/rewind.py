"""Rewinding a FAILED execution: the copy of its history that the rewound execution replays.

A rewind starts a new execution of the same instance whose history is a copy of the failed one with
the failure taken out; the hub appends an :class:`~dtctl.core.history.ExecutionRewound` message, and
the episode that consumes it schedules again the work the copy left without a scheduling event. The
failed execution stays stored as the previous execution (the record of what failed).

Which events the copy keeps follows one rule that keeps replay deterministic by construction:

- **The cut** is just after the last scheduling event (``task_scheduled``, ``timer_created``,
  ``sub_orchestration_created``, ``event_sent``). The code made no call after it, so nothing recorded
  after the cut depends on how the code reacted to what arrived there. After the cut the failures
  (``task_failed``, ``sub_orchestration_failed``) and the ``execution_completed`` are dropped: these
  are the failures being rewound. Everything before the cut is kept, failures too: the code made
  calls after them (a retry, a fallback), and dropping them could change which calls it makes.
- **Work without a result** in the copy loses its scheduling event, so the code's call for it is
  still pending after replay and is scheduled again with the same task id: an activity runs again, a
  timer is created again (with the same due time). Work with a result is kept, so an activity that
  completed is never run again.
- **Sub-orchestrations without a result** (:attr:`RewindPlan.open_children`) are the hub's decision,
  since it depends on the child: a FAILED child is rewound with its parent and keeps its record; a
  child that is gone (purged) or was terminated is created again (:meth:`RewindPlan.history`).

``execution_started`` is copied unchanged, execution id included, so the code replays exactly as it
ran (ids it derives from the context stay the same); the instance's execution id is the new one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from dtctl.core.history import (
    FAILED,
    EventSent,
    ExecutionCompleted,
    HistoryEvent,
    OrchestratorStarted,
    SubOrchestrationCompleted,
    SubOrchestrationCreated,
    SubOrchestrationFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from dtctl.errors import InvalidState

__all__ = ["RewindPlan", "plan_rewind"]

_SCHEDULING = (TaskScheduled, TimerCreated, SubOrchestrationCreated, EventSent)
_REWOUND = (TaskFailed, SubOrchestrationFailed, ExecutionCompleted)
_RESULTS = (TaskCompleted, TaskFailed, TimerFired, SubOrchestrationCompleted, SubOrchestrationFailed)
_RERUN = (TaskScheduled, TimerCreated)  # dropped without a result: the code schedules them again


@dataclass(frozen=True, slots=True)
class RewindPlan:
    """The rewound copy of a failed execution's history, before the hub's decision on open children."""

    events: tuple[HistoryEvent, ...]
    open_children: tuple[SubOrchestrationCreated, ...]  # created, and no result in the copy

    def history(self, recreate: Collection[int] = ()) -> list[HistoryEvent]:
        """The copy without the ``sub_orchestration_created`` of the children to create again (task ids)."""
        if not recreate:
            return list(self.events)
        return [e for e in self.events if not (type(e) is SubOrchestrationCreated and e.task_id in recreate)]


def plan_rewind(events: Sequence[HistoryEvent]) -> RewindPlan:
    """The rewound copy of ``events``, the history of an execution that ended FAILED."""
    last = events[-1] if events else None
    if not isinstance(last, ExecutionCompleted) or last.status != FAILED:
        raise InvalidState("only the history of a FAILED execution can be rewound")
    cut = _cut(events)
    kept = [*events[:cut], *(e for e in events[cut:] if not isinstance(e, _REWOUND))]
    answered = {e.task_id for e in kept if isinstance(e, _RESULTS)}
    copy: list[HistoryEvent] = []
    children: list[SubOrchestrationCreated] = []
    for event in kept:
        if isinstance(event, _RERUN) and event.task_id not in answered:
            continue
        if type(event) is SubOrchestrationCreated and event.task_id not in answered:
            children.append(event)
        copy.append(event)
    while copy and type(copy[-1]) is OrchestratorStarted:
        copy.pop()  # an episode marker with nothing after it
    return RewindPlan(tuple(copy), tuple(children))


def _cut(events: Sequence[HistoryEvent]) -> int:
    for index in range(len(events) - 1, -1, -1):
        if isinstance(events[index], _SCHEDULING):
            return index + 1
    return 0
