"""Drive a hub the way a worker does, without the replay engine: build Decisions by hand."""

from __future__ import annotations

from collections.abc import Sequence

from dtctl.core.decision import (
    Action,
    CallEntity,
    CancelTimer,
    ContinueAsNew,
    CreateTimer,
    Decision,
    LockEntities,
    ScheduleTask,
    SendEvent,
    SignalEntity,
    StartSubOrchestration,
    UnlockEntities,
)
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    COMPLETED,
    CONTINUED_AS_NEW,
    RUNNING,
    TERMINAL_STATUSES,
    ContinuedAsNew,
    EntityLockRequested,
    EntityOperationCalled,
    EntityOperationSignaled,
    EntityUnlockSent,
    EventSent,
    ExecutionCompleted,
    HistoryEvent,
    OrchestratorStarted,
    SubOrchestrationCreated,
    TaskScheduled,
    TimerCancelled,
    TimerCreated,
)
from dtctl.hub.base import NewInstance, OrchestrationWorkItem, TaskHub

ORCH = "orch"


def start(
    hub: TaskHub, *ids: str, name: str = ORCH, input: str | None = None, start_at: int | None = None
) -> None:
    hub.create_instances([NewInstance(instance_id=i, name=name, input=input, start_at=start_at) for i in ids])


def scheduling_event(action: Action, timestamp: int) -> HistoryEvent:
    if isinstance(action, ScheduleTask):
        return TaskScheduled(
            timestamp=timestamp, task_id=action.task_id, name=action.name, input=action.input
        )
    if isinstance(action, CreateTimer):
        return TimerCreated(timestamp=timestamp, task_id=action.task_id, fire_at=action.fire_at)
    if isinstance(action, CancelTimer):
        return TimerCancelled(timestamp=timestamp, task_id=action.task_id)
    if isinstance(action, StartSubOrchestration):
        return SubOrchestrationCreated(
            timestamp=timestamp, task_id=action.task_id, name=action.name, instance_id=action.instance_id
        )
    entity = _entity_event(action, timestamp)
    if entity is not None:
        return entity
    assert isinstance(action, SendEvent)
    return EventSent(
        timestamp=timestamp, task_id=action.task_id, instance_id=action.instance_id, name=action.name
    )


def _entity_event(action: Action, timestamp: int) -> HistoryEvent | None:
    if isinstance(action, CallEntity):
        return EntityOperationCalled(
            timestamp=timestamp,
            task_id=action.task_id,
            entity_id=action.entity_id,
            operation=action.operation,
        )
    if isinstance(action, SignalEntity):
        return EntityOperationSignaled(
            timestamp=timestamp,
            task_id=action.task_id,
            entity_id=action.entity_id,
            operation=action.operation,
        )
    if isinstance(action, LockEntities | UnlockEntities):
        kind = EntityLockRequested if isinstance(action, LockEntities) else EntityUnlockSent
        return kind(
            timestamp=timestamp,
            task_id=action.task_id,
            critical_section_id=action.critical_section_id,
            entity_ids=action.entity_ids,
        )
    return None


def decide(
    item: OrchestrationWorkItem,
    status: str = RUNNING,
    actions: Sequence[Action] = (),
    *,
    output: str | None = None,
    failure: FailureDetails | None = None,
    custom_status: str | None = None,
    continue_as_new: ContinueAsNew | None = None,
) -> Decision:
    """A Decision shaped like the replay engine's: started marker, consumed events, actions, end."""
    now = item.leased_at
    history: list[HistoryEvent] = [OrchestratorStarted(timestamp=now)]
    history.extend(m.event for m in item.messages)
    history.extend(scheduling_event(a, now) for a in actions)
    if status in TERMINAL_STATUSES:
        history.append(ExecutionCompleted(timestamp=now, status=status, result=output, failure=failure))
    if status == CONTINUED_AS_NEW:
        assert continue_as_new is not None
        history.append(
            ContinuedAsNew(
                timestamp=now, input=continue_as_new.input, new_execution_id=continue_as_new.execution_id
            )
        )
    return Decision(
        status=status,
        actions=tuple(actions),
        new_history=tuple(history),
        custom_status=custom_status,
        output=output,
        failure=failure,
        continue_as_new=continue_as_new,
    )


def lease(
    hub: TaskHub, instance_id: str, *, owner: str = "w1", lease_seconds: float = 30
) -> OrchestrationWorkItem:
    """Lease one named instance (fails the test if it is not leasable now)."""
    found: OrchestrationWorkItem | None = None
    for item in hub.lease_orchestrations(owner, None, limit=1000, lease_seconds=lease_seconds):
        if item.instance_id == instance_id:
            found = item
        else:
            hub.abandon_orchestration(item)
    assert found is not None, f"{instance_id} is not leasable"
    return found


def step(
    hub: TaskHub,
    instance_id: str,
    status: str = RUNNING,
    actions: Sequence[Action] = (),
    **kwargs: object,
) -> OrchestrationWorkItem:
    """One episode: lease the instance, checkpoint a hand-made decision, check it committed."""
    item = lease(hub, instance_id)
    [result] = hub.checkpoint([(item, decide(item, status, actions, **kwargs))])  # type: ignore[arg-type]
    assert result.committed, result.reason
    return item


def kinds(events: Sequence[HistoryEvent]) -> list[str]:
    return [e.kind for e in events]


def finish_all(hub: TaskHub, *instance_ids: str) -> None:
    """Complete each instance in one episode."""
    for instance_id in instance_ids:
        step(hub, instance_id, COMPLETED, output='"ok"')
