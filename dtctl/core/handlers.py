"""The replay engine's event handlers: one small function per history event kind.

A handler applies one event to an :class:`~dtctl.core.execution.Execution`, through the execution's
methods and the context's engine interface. :func:`handles` registers it for its event class and says
what becomes of that kind of event while the instance is suspended (applied, or held until it is
resumed) and once the execution has ended (applied, or ignored). :data:`TABLES` is built from those
registrations; a history event kind without a handler fails at import.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar, cast

from dtctl.core import payload
from dtctl.core.context import (
    ACTIVITY,
    CALL_ENTITY,
    CANCEL_TIMER,
    LOCK_ENTITIES,
    SEND_EVENT,
    SIGNAL_ENTITY,
    SUB_ORCHESTRATION,
    TIMER,
    UNLOCK_ENTITIES,
)
from dtctl.core.execution import Execution, Handler, HandlerTables, NextExecution
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    CONTINUED_AS_NEW,
    EVENT_TYPES,
    TERMINATED,
    ContinuedAsNew,
    EntityLockGranted,
    EntityLockRequested,
    EntityOperationCalled,
    EntityOperationCompleted,
    EntityOperationFailed,
    EntityOperationSignaled,
    EntityUnlockSent,
    EventRaised,
    EventSent,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionRewound,
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
    TimerCancelled,
    TimerCreated,
    TimerFired,
)
from dtctl.core.task import CompletableTask, RetryableTask, TimerTask
from dtctl.errors import PayloadError

__all__ = ["TABLES", "AfterEnd", "WhileSuspended", "handles"]

E = TypeVar("E", bound=HistoryEvent)


class WhileSuspended(Enum):
    APPLY = "apply"  # the instance's own records, the episode clock, suspend/resume/terminate
    HOLD = "hold"  # a message to the orchestrator: it waits until the instance is resumed


class AfterEnd(Enum):
    APPLY = "apply"  # still matters: a recorded end, or a recorded call (a mismatch fails the execution)
    IGNORE = "ignore"  # nothing else changes an ended execution


_registered: dict[type[HistoryEvent], tuple[Handler, WhileSuspended, AfterEnd]] = {}


def handles(
    kind: type[E], *, while_suspended: WhileSuspended, after_end: AfterEnd
) -> Callable[[Callable[[Execution, E], None]], Callable[[Execution, E], None]]:
    """Register the decorated function as the handler of ``kind``."""

    def register(handler: Callable[[Execution, E], None]) -> Callable[[Execution, E], None]:
        if kind in _registered:
            raise TypeError(f"{kind.__name__} already has a handler")
        # Sound: the tables call a handler only with events of exactly the class it is keyed by.
        _registered[kind] = (cast(Handler, handler), while_suspended, after_end)
        return handler

    return register


# --- the execution -------------------------------------------------------------------------------------


@handles(ExecutionStarted, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_execution_started(ex: Execution, event: ExecutionStarted) -> None:
    ex.start(event)


@handles(OrchestratorStarted, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.IGNORE)
def _on_orchestrator_started(ex: Execution, event: OrchestratorStarted) -> None:
    ex.context.set_time(event.timestamp)


@handles(ExecutionSuspended, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.IGNORE)
def _on_execution_suspended(ex: Execution, event: ExecutionSuspended) -> None:
    ex.suspend()


@handles(ExecutionResumed, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.IGNORE)
def _on_execution_resumed(ex: Execution, event: ExecutionResumed) -> None:
    for held in ex.resume():
        ex.handlers[type(held)](ex, held)
        if ex.ending is not None:
            break


@handles(ExecutionTerminated, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.IGNORE)
def _on_execution_terminated(ex: Execution, event: ExecutionTerminated) -> None:
    try:
        reason = payload.encode(event.reason, what="the termination reason")
    except PayloadError:
        reason = None
    ex.stop(TERMINATED, output=reason)


@handles(ExecutionCompleted, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_execution_completed(ex: Execution, event: ExecutionCompleted) -> None:
    ex.record_end(event.status, output=event.result, failure=event.failure)


@handles(ContinuedAsNew, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_continued_as_new(ex: Execution, event: ContinuedAsNew) -> None:
    follow = NextExecution(event.new_execution_id or "", event.input, False, event.new_version)
    ex.record_end(CONTINUED_AS_NEW, next_execution=follow)


@handles(ExecutionRewound, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.IGNORE)
def _on_execution_rewound(ex: Execution, event: ExecutionRewound) -> None:
    """A record only: the rewound copy of history before it left the failed work without a scheduling
    event, so the calls the code made for it are still pending and this episode schedules them again."""


@handles(GenericEvent, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_generic(ex: Execution, event: GenericEvent) -> None:
    """A wake-up: nothing to do."""


# --- recorded calls: history must show the calls the code makes now -------------------------------------


@handles(TaskScheduled, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_task_scheduled(ex: Execution, event: TaskScheduled) -> None:
    call = ex.pending.calls.pop(event.task_id, None)
    if call is None or call.kind is not ACTIVITY or call.name != event.name:
        ex.mismatch(event.task_id, f"{ACTIVITY}({event.name!r})", call)


@handles(TimerCreated, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_timer_created(ex: Execution, event: TimerCreated) -> None:
    call = ex.pending.calls.pop(event.task_id, None)
    if call is None or call.kind is not TIMER:
        ex.mismatch(event.task_id, f"{TIMER}()", call)


@handles(TimerCancelled, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_timer_cancelled(ex: Execution, event: TimerCancelled) -> None:
    call = ex.pending.calls.pop(event.task_id, None)
    if call is None or call.kind is not CANCEL_TIMER:
        ex.mismatch(event.task_id, "cancel() of a timer", call)


@handles(SubOrchestrationCreated, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_sub_orchestration_created(ex: Execution, event: SubOrchestrationCreated) -> None:
    call = ex.pending.calls.pop(event.task_id, None)
    if call is None or call.kind is not SUB_ORCHESTRATION or call.name != event.name:
        ex.mismatch(event.task_id, f"{SUB_ORCHESTRATION}({event.name!r})", call)


@handles(EventSent, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_event_sent(ex: Execution, event: EventSent) -> None:
    call = ex.pending.calls.pop(event.task_id, None)
    target = (event.instance_id, event.name)
    if call is None or call.kind is not SEND_EVENT or (call.target, call.name) != target:
        ex.mismatch(event.task_id, f"{SEND_EVENT}({event.instance_id!r}, {event.name!r})", call)


@handles(EntityOperationCalled, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_entity_operation_called(ex: Execution, event: EntityOperationCalled) -> None:
    call = ex.pending.calls.pop(event.task_id, None)
    target = (event.entity_id, event.operation)
    if call is None or call.kind is not CALL_ENTITY or (call.target, call.name) != target:
        ex.mismatch(event.task_id, f"{CALL_ENTITY}({event.entity_id!r}, {event.operation!r})", call)


@handles(EntityOperationSignaled, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_entity_operation_signaled(ex: Execution, event: EntityOperationSignaled) -> None:
    call = ex.pending.calls.pop(event.task_id, None)
    target = (event.entity_id, event.operation)
    if call is None or call.kind is not SIGNAL_ENTITY or (call.target, call.name) != target:
        ex.mismatch(event.task_id, f"{SIGNAL_ENTITY}({event.entity_id!r}, {event.operation!r})", call)


@handles(EntityLockRequested, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_entity_lock_requested(ex: Execution, event: EntityLockRequested) -> None:
    call = ex.pending.calls.pop(event.task_id, None)
    recorded = (event.critical_section_id, event.entity_ids)
    if call is None or call.kind is not LOCK_ENTITIES or (call.name, call.entities) != recorded:
        ex.mismatch(event.task_id, f"{LOCK_ENTITIES}({list(event.entity_ids)!r})", call)


@handles(EntityUnlockSent, while_suspended=WhileSuspended.APPLY, after_end=AfterEnd.APPLY)
def _on_entity_unlock_sent(ex: Execution, event: EntityUnlockSent) -> None:
    call = ex.pending.calls.pop(event.task_id, None)
    recorded = (event.critical_section_id, event.entity_ids)
    if call is None or call.kind is not UNLOCK_ENTITIES or (call.name, call.entities) != recorded:
        ex.mismatch(event.task_id, f"{UNLOCK_ENTITIES}({list(event.entity_ids)!r})", call)


# --- messages: results of work, timers, external events ----------------------------------------------------


@handles(TaskCompleted, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_task_completed(ex: Execution, event: TaskCompleted) -> None:
    task = ex.pending.tasks.pop(event.task_id, None)
    if task is not None:  # otherwise a duplicate delivery, or work this code never scheduled
        ex.deliver(task, event.result)


@handles(TaskFailed, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_task_failed(ex: Execution, event: TaskFailed) -> None:
    _work_failed(ex, ex.pending.tasks.pop(event.task_id, None), event.failure)


@handles(SubOrchestrationCompleted, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_sub_orchestration_completed(ex: Execution, event: SubOrchestrationCompleted) -> None:
    task = ex.pending.tasks.pop(event.task_id, None)
    if task is not None:
        ex.deliver(task, event.result)


@handles(SubOrchestrationFailed, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_sub_orchestration_failed(ex: Execution, event: SubOrchestrationFailed) -> None:
    _work_failed(ex, ex.pending.tasks.pop(event.task_id, None), event.failure)


def _work_failed(ex: Execution, task: CompletableTask[Any] | None, failure: FailureDetails) -> None:
    if task is None:
        return
    if isinstance(task, RetryableTask) and ex.context.schedule_retry(task):
        return
    ex.deliver_failure(task, failure)


@handles(TimerFired, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_timer_fired(ex: Execution, event: TimerFired) -> None:
    task = ex.pending.tasks.pop(event.task_id, None)
    if task is None:
        return
    if isinstance(task, TimerTask) and task.retry_of is not None:
        ex.context.retry(task.retry_of)
        return
    ex.deliver(task, None)


@handles(EventRaised, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_event_raised(ex: Execution, event: EventRaised) -> None:
    waiter = ex.context.receive_event(event)
    if waiter is not None:
        ex.deliver(waiter, event.input)


@handles(EntityOperationCompleted, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_entity_operation_completed(ex: Execution, event: EntityOperationCompleted) -> None:
    task = ex.pending.tasks.pop(event.task_id, None)
    if task is not None:
        ex.context.entity_responded(event.task_id)
        ex.deliver(task, event.result)


@handles(EntityOperationFailed, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_entity_operation_failed(ex: Execution, event: EntityOperationFailed) -> None:
    task = ex.pending.tasks.pop(event.task_id, None)
    if task is not None:
        ex.context.entity_responded(event.task_id)
        ex.deliver_failure(task, event.failure)


@handles(EntityLockGranted, while_suspended=WhileSuspended.HOLD, after_end=AfterEnd.IGNORE)
def _on_entity_lock_granted(ex: Execution, event: EntityLockGranted) -> None:
    # A grant for another section (one this code no longer waits for) changes nothing here; the hub's
    # entity cleanup releases locks whose holder is gone.
    if not ex.context.lock_granted(event.critical_section_id):
        return
    task = ex.pending.tasks.pop(event.task_id, None)
    if task is not None:
        ex.deliver(task, None)


# --- the tables ---------------------------------------------------------------------------------------------


def _hold(ex: Execution, event: HistoryEvent) -> None:
    ex.hold(event)


def _ignore(ex: Execution, event: HistoryEvent) -> None:
    """After the end nothing but a recorded end (or a recorded call) changes the decision."""


def _tables() -> HandlerTables:
    missing = [cls.__name__ for cls in EVENT_TYPES.values() if cls not in _registered]
    if missing:  # fail at import, not in the middle of someone's replay
        raise TypeError(f"history event kinds without a replay handler: {', '.join(missing)}")
    live: dict[type[HistoryEvent], Handler] = {}
    suspended: dict[type[HistoryEvent], Handler] = {}
    ended: dict[type[HistoryEvent], Handler] = {}
    for cls, (handler, while_suspended, after_end) in _registered.items():
        live[cls] = handler
        suspended[cls] = handler if while_suspended is WhileSuspended.APPLY else _hold
        ended[cls] = handler if after_end is AfterEnd.APPLY else _ignore
    return HandlerTables(live=live, suspended=suspended, ended=ended)


TABLES = _tables()
