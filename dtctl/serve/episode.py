"""One SDK episode as a dtctl :class:`Decision`: the SDK replays, the server keeps the history.

An orchestrator work item carries the past events and the new ones; the SDK returns only the actions
new in this episode. This module turns them into exactly what dtctl's own replay engine would have
decided: the history to append (the episode's ``orchestrator_started``, the consumed messages, one
scheduling event per action, the final event), the actions for the hub, and the runtime status.

Nothing here touches the hub: :func:`decide` is a pure function of the work item and the response, so a
completion that the hub refuses (stale lease) can be decided again by the next owner without residue.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from dtctl.core.decision import (
    Action,
    ContinueAsNew,
    CreateTimer,
    Decision,
    ScheduleTask,
    SendEvent,
    StartSubOrchestration,
)
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    CONTINUED_AS_NEW,
    FAILED,
    RUNNING,
    SUSPENDED,
    TERMINAL_STATUSES,
    ContinuedAsNew,
    EventSent,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionSuspended,
    HistoryEvent,
    OrchestratorStarted,
    SubOrchestrationCreated,
    TaskScheduled,
    TimerCreated,
)
from dtctl.hub.base import OrchestrationWorkItem
from dtctl.serve import convert
from dtctl.serve.entitymessages import entity_action
from dtctl.serve.proto import orchestrator_service_pb2 as pb

UNSUPPORTED_ERROR_TYPE = "dtctl.errors.UnsupportedAction"
# The namespace of continue-as-new execution ids chosen by serve (any fixed UUID; never changes).
_EXECUTION_NAMESPACE = uuid.UUID("5b0c2f57-5c3e-4e0f-9a53-6d2b8e9b7a11")


@dataclass(frozen=True, slots=True)
class Episode:
    """What the server sent for one orchestrator work item, kept until the SDK completes it."""

    item: OrchestrationWorkItem
    new_events: tuple[HistoryEvent, ...]  # orchestrator_started + the leased messages, as sent
    suspended: bool  # after the past events (before the new ones)


def new_events(item: OrchestrationWorkItem) -> tuple[HistoryEvent, ...]:
    return (OrchestratorStarted(timestamp=item.leased_at), *(m.event for m in item.messages))


def is_suspended(suspended: bool, events: Iterable[HistoryEvent]) -> bool:
    """Whether the instance is suspended after ``events`` (the SDK holds events itself meanwhile)."""
    for event in events:
        kind = type(event)
        if kind is ExecutionSuspended:
            suspended = True
        elif kind is ExecutionResumed:
            suspended = False
    return suspended


class _Builder:
    def __init__(self, episode: Episode) -> None:
        self.item = episode.item
        self.now = episode.item.leased_at
        self.history: list[HistoryEvent] = list(episode.new_events)
        self.actions: list[Action] = []
        self.status = SUSPENDED if is_suspended(episode.suspended, episode.new_events) else RUNNING
        self.output: str | None = None
        self.failure: FailureDetails | None = None
        self.follow_up: ContinueAsNew | None = None

    def add(self, action: pb.OrchestratorAction) -> None:
        kind = action.WhichOneof("orchestratorActionType")
        task_id = action.id
        if kind == "scheduleTask":
            task = action.scheduleTask
            data, tags = convert.optional_text(task, "input"), dict(task.tags) or None
            self.actions.append(ScheduleTask(task_id=task_id, name=task.name, input=data, tags=tags))
            self.history.append(
                TaskScheduled(timestamp=self.now, task_id=task_id, name=task.name, input=data, tags=tags)
            )
        elif kind == "createTimer":
            fire_at = convert.micros(action.createTimer.fireAt)
            self.actions.append(CreateTimer(task_id=task_id, fire_at=fire_at))
            self.history.append(TimerCreated(timestamp=self.now, task_id=task_id, fire_at=fire_at))
        elif kind == "createSubOrchestration":
            self._sub_orchestration(task_id, action.createSubOrchestration)
        elif kind == "sendEvent":
            send = action.sendEvent
            target, data = send.instance.instanceId, convert.optional_text(send, "data")
            self.actions.append(SendEvent(task_id=task_id, instance_id=target, name=send.name, data=data))
            self.history.append(
                EventSent(timestamp=self.now, task_id=task_id, instance_id=target, name=send.name, input=data)
            )
        elif kind == "sendEntityMessage":
            sent, event = entity_action(task_id, action.sendEntityMessage, self.now)
            self.actions.append(sent)
            self.history.append(event)
        elif kind == "completeOrchestration":
            self._complete(action.completeOrchestration)
        else:
            raise UnsupportedAction(kind or "an empty action")

    def _sub_orchestration(self, task_id: int, create: pb.CreateSubOrchestrationAction) -> None:
        # The SDK names children itself; this default (its format) covers SDKs that leave it empty.
        child = create.instanceId or f"{self.item.instance_id}:{task_id:04x}"
        data, version = convert.optional_text(create, "input"), convert.optional_text(create, "version")
        self.actions.append(
            StartSubOrchestration(
                task_id=task_id, name=create.name, instance_id=child, input=data, version=version
            )
        )
        self.history.append(
            SubOrchestrationCreated(
                timestamp=self.now,
                task_id=task_id,
                name=create.name,
                instance_id=child,
                input=data,
                version=version,
            )
        )

    def _complete(self, complete: pb.CompleteOrchestrationAction) -> None:
        status = convert.status_from_proto(complete.orchestrationStatus)
        result = convert.optional_text(complete, "result")
        if status == CONTINUED_AS_NEW:
            carryover = tuple(convert.event_from_proto(e) for e in complete.carryoverEvents)
            self.follow_up = ContinueAsNew(
                execution_id=continue_as_new_execution_id(self.item),
                input=result,
                carryover_events=carryover,
                version=convert.optional_text(complete, "newVersion") or self.item.version,
            )
            self.status = status
            return
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"an orchestration cannot complete with status {status}")
        self.status = status
        self.output = result
        if complete.HasField("failureDetails"):
            self.failure = convert.failure_from_proto(complete.failureDetails)
        elif status == FAILED:
            self.failure = FailureDetails(message="the orchestration failed", error_type="builtins.Exception")

    def decision(self, custom_status: str | None) -> Decision:
        if self.follow_up is not None:
            spec = self.follow_up
            self.history.append(
                ContinuedAsNew(
                    timestamp=self.now,
                    input=spec.input,
                    new_execution_id=spec.execution_id,
                    new_version=spec.version,
                )
            )
        elif self.status in TERMINAL_STATUSES:
            self.history.append(
                ExecutionCompleted(
                    timestamp=self.now, status=self.status, result=self.output, failure=self.failure
                )
            )
        return Decision(
            status=self.status,
            actions=tuple(self.actions),
            new_history=tuple(self.history),
            custom_status=custom_status,
            output=self.output,
            failure=self.failure,
            continue_as_new=self.follow_up,
        )


class UnsupportedAction(ValueError):
    """An action this server cannot carry out yet (terminate of another instance)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"dtctl serve does not support the {kind} action yet")


def continue_as_new_execution_id(item: OrchestrationWorkItem) -> str:
    # Derived from the lease, so the same completion decided twice picks the same id.
    return str(uuid.uuid5(_EXECUTION_NAMESPACE, f"{item.instance_id}/{item.execution_id}/{item.lease_token}"))


def decide(episode: Episode, response: pb.OrchestratorResponse) -> Decision:
    """The decision for ``response``; an action the server cannot carry out fails the instance instead."""
    custom_status = convert.optional_text(response, "customStatus")
    builder = _Builder(episode)
    try:
        for action in response.actions:
            builder.add(action)
    except ValueError as error:
        return failed_decision(episode, str(error), custom_status)
    return builder.decision(custom_status)


def failed_decision(episode: Episode, message: str, custom_status: str | None = None) -> Decision:
    """End the execution FAILED with ``message``: nothing the SDK asked for in this episode goes out."""
    now = episode.item.leased_at
    failure = FailureDetails(message=message, error_type=UNSUPPORTED_ERROR_TYPE)
    history = (*episode.new_events, ExecutionCompleted(timestamp=now, status=FAILED, failure=failure))
    return Decision(status=FAILED, new_history=history, custom_status=custom_status, failure=failure)
