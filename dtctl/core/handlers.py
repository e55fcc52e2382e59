"""The replay engine's event handlers: one small function per history event kind, and their tables.

A handler applies one event to an :class:`~dtctl.core.replay.OrchestrationExecutor`. The executor
dispatches through one of four tables: the live one, the one used while the instance is suspended
(incoming messages are held), the one used once the execution has ended, and the subset of the last
that matters for the rest of a replayed history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dtctl.core import payload
from dtctl.core.context import ACTIVITY, SEND_EVENT, SUB_ORCHESTRATION, TIMER
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    CONTINUED_AS_NEW,
    EVENT_TYPES,
    TERMINATED,
    ContinuedAsNew,
    EventRaised,
    EventSent,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    GenericEvent,
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
from dtctl.core.task import RetryableTask, TimerTask
from dtctl.errors import PayloadError

if TYPE_CHECKING:
    from dtctl.core.replay import OrchestrationExecutor

Handler = Callable[["OrchestrationExecutor", Any], None]

# Why an execution ended: the code did it (a later mismatch with history may still overrule it), replay
# stopped it (non-determinism, terminate: final), or history already records the end.
BY_CODE = 1
STOPPED = 2
RECORDED = 3


def _on_execution_started(ex: OrchestrationExecutor, event: ExecutionStarted) -> None:
    if ex._started:
        return  # a duplicated start message changes nothing
    ex._started = True
    ctx = ex._ctx
    ctx._instance_id = event.instance_id
    ctx._execution_id = event.execution_id
    ctx._parent_instance_id = event.parent_instance_id
    if ctx._now_us == 0:
        ctx._now_us = event.timestamp
    ex._start(event.input)


def on_orchestrator_started(ex: OrchestrationExecutor, event: OrchestratorStarted) -> None:
    ex._ctx._now_us = event.timestamp


def _on_task_scheduled(ex: OrchestrationExecutor, event: TaskScheduled) -> None:
    call = ex._ctx._actions.pop(event.task_id, None)
    if call is None or call.kind is not ACTIVITY or call.name != event.name:
        ex._nondeterminism(event.task_id, f"{ACTIVITY}({event.name!r})", call)


def _on_timer_created(ex: OrchestrationExecutor, event: TimerCreated) -> None:
    call = ex._ctx._actions.pop(event.task_id, None)
    if call is None or call.kind is not TIMER:
        ex._nondeterminism(event.task_id, f"{TIMER}()", call)


def _on_sub_orchestration_created(ex: OrchestrationExecutor, event: SubOrchestrationCreated) -> None:
    call = ex._ctx._actions.pop(event.task_id, None)
    if call is None or call.kind is not SUB_ORCHESTRATION or call.name != event.name:
        ex._nondeterminism(event.task_id, f"{SUB_ORCHESTRATION}({event.name!r})", call)


def _on_event_sent(ex: OrchestrationExecutor, event: EventSent) -> None:
    call = ex._ctx._actions.pop(event.task_id, None)
    target = (event.instance_id, event.name)
    if call is None or call.kind is not SEND_EVENT or (call.target, call.name) != target:
        ex._nondeterminism(event.task_id, f"{SEND_EVENT}({event.instance_id!r}, {event.name!r})", call)


def _on_task_completed(ex: OrchestrationExecutor, event: TaskCompleted) -> None:
    task = ex._ctx._tasks.pop(event.task_id, None)
    if task is not None:  # otherwise a duplicate delivery, or work this code never scheduled
        ex._deliver(task, event.result)


def _on_task_failed(ex: OrchestrationExecutor, event: TaskFailed) -> None:
    _work_failed(ex, event.task_id, event.failure)


def _on_sub_orchestration_completed(ex: OrchestrationExecutor, event: SubOrchestrationCompleted) -> None:
    task = ex._ctx._tasks.pop(event.task_id, None)
    if task is not None:
        ex._deliver(task, event.result)


def _on_sub_orchestration_failed(ex: OrchestrationExecutor, event: SubOrchestrationFailed) -> None:
    _work_failed(ex, event.task_id, event.failure)


def _work_failed(ex: OrchestrationExecutor, task_id: int, failure: FailureDetails) -> None:
    ctx = ex._ctx
    task = ctx._tasks.pop(task_id, None)
    if task is None:
        return
    if isinstance(task, RetryableTask) and ctx._schedule_retry(task):
        return
    ex._deliver_failure(task, failure)


def _on_timer_fired(ex: OrchestrationExecutor, event: TimerFired) -> None:
    ctx = ex._ctx
    task = ctx._tasks.pop(event.task_id, None)
    if task is None:
        return
    if isinstance(task, TimerTask) and task.retry_of is not None:
        ctx._retry(task.retry_of)
        return
    ex._deliver(task, None)


def _on_event_raised(ex: OrchestrationExecutor, event: EventRaised) -> None:
    ctx = ex._ctx
    key = event.name.casefold()
    waiters = ctx._waiters.get(key)
    if waiters:
        ex._deliver(waiters.popleft(), event.input)
    else:
        ctx._buffer_event(key, event)


def _on_execution_suspended(ex: OrchestrationExecutor, event: ExecutionSuspended) -> None:
    ex._suspended = True
    ex._table = SUSPENDED_TABLE


def _on_execution_resumed(ex: OrchestrationExecutor, event: ExecutionResumed) -> None:
    if not ex._suspended:
        return
    ex._suspended = False
    ex._table = HANDLERS
    held, ex._held = ex._held, []
    for waiting in held:
        ex._table[type(waiting)](ex, waiting)
        if ex._status is not None:
            break


def _on_execution_terminated(ex: OrchestrationExecutor, event: ExecutionTerminated) -> None:
    try:
        reason = payload.encode(event.reason, what="the termination reason")
    except PayloadError:
        reason = None
    ex._stop(TERMINATED, output=reason)


def _on_execution_ended(ex: OrchestrationExecutor, event: ExecutionCompleted | ContinuedAsNew) -> None:
    """History already records the end: it is the truth, whatever the code does now."""
    if isinstance(event, ContinuedAsNew):
        ex._status = CONTINUED_AS_NEW
        ex._output, ex._failure = None, None
        ex._next_execution = (event.input, event.new_execution_id or "", False)
    else:
        ex._status = event.status
        ex._output, ex._failure = event.result, event.failure
        ex._next_execution = None
    ex._reason = RECORDED
    ex._table = ENDED


def _on_generic(ex: OrchestrationExecutor, event: GenericEvent) -> None:
    """A wake-up: nothing to do."""


def _hold(ex: OrchestrationExecutor, event: HistoryEvent) -> None:
    ex._held.append(event)


def _ignore(ex: OrchestrationExecutor, event: HistoryEvent) -> None:
    """After the end nothing but a recorded end changes the decision."""


BY_KIND: dict[str, Handler] = {
    "execution_started": _on_execution_started,
    "orchestrator_started": on_orchestrator_started,
    "task_scheduled": _on_task_scheduled,
    "task_completed": _on_task_completed,
    "task_failed": _on_task_failed,
    "timer_created": _on_timer_created,
    "timer_fired": _on_timer_fired,
    "event_raised": _on_event_raised,
    "event_sent": _on_event_sent,
    "sub_orchestration_created": _on_sub_orchestration_created,
    "sub_orchestration_completed": _on_sub_orchestration_completed,
    "sub_orchestration_failed": _on_sub_orchestration_failed,
    "execution_suspended": _on_execution_suspended,
    "execution_resumed": _on_execution_resumed,
    "execution_terminated": _on_execution_terminated,
    "execution_completed": _on_execution_ended,
    "continued_as_new": _on_execution_ended,
    "generic": _on_generic,
}
# Keyed by class for the hot path (one dict lookup on type(event)); a missing kind fails at import.
HANDLERS: dict[type[HistoryEvent], Handler] = {cls: BY_KIND[kind] for kind, cls in EVENT_TYPES.items()}

# Messages to the orchestrator wait while it is suspended; its own records and the episode clock do not.
_HELD_KINDS = (
    "execution_started",
    "task_completed",
    "task_failed",
    "timer_fired",
    "event_raised",
    "sub_orchestration_completed",
    "sub_orchestration_failed",
    "generic",
)
SUSPENDED_TABLE: dict[type[HistoryEvent], Handler] = {
    **HANDLERS,
    **{EVENT_TYPES[kind]: _hold for kind in _HELD_KINDS},
}

# After the end only recorded scheduling (to catch a mismatch) and a recorded end still matter.
AFTER_END: dict[type[HistoryEvent], Handler] = {
    TaskScheduled: _on_task_scheduled,
    TimerCreated: _on_timer_created,
    SubOrchestrationCreated: _on_sub_orchestration_created,
    EventSent: _on_event_sent,
    ExecutionCompleted: _on_execution_ended,
    ContinuedAsNew: _on_execution_ended,
}
ENDED: dict[type[HistoryEvent], Handler] = {cls: AFTER_END.get(cls, _ignore) for cls in EVENT_TYPES.values()}
