"""Translation between dtctl's records and the sidecar protocol's messages.

dtctl and the durabletask SDKs share the event-sourcing model, so most events map one to one: a task id
is the proto ``eventId`` of a scheduling event and the ``taskScheduledId`` / ``timerId`` of its
completion. Payloads are JSON text on both sides and pass through untouched. Times are epoch
microseconds here and ``google.protobuf.Timestamp`` there.

What does not survive the trip (dtctl has no field for it): a failure's ``innerFailure``,
``isNonRetriable`` and ``properties``; trace contexts; versions and tags (issue 12).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from google.protobuf import timestamp_pb2, wrappers_pb2

from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    PENDING,
    RUNNING,
    SUSPENDED,
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
from dtctl.core.status import RuntimeStatus
from dtctl.hub.base import InstanceState
from dtctl.serve.proto import orchestrator_service_pb2 as pb

STATUS_TO_PROTO: dict[str, Any] = {
    RUNNING: pb.ORCHESTRATION_STATUS_RUNNING,
    COMPLETED: pb.ORCHESTRATION_STATUS_COMPLETED,
    CONTINUED_AS_NEW: pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
    FAILED: pb.ORCHESTRATION_STATUS_FAILED,
    TERMINATED: pb.ORCHESTRATION_STATUS_TERMINATED,
    PENDING: pb.ORCHESTRATION_STATUS_PENDING,
    SUSPENDED: pb.ORCHESTRATION_STATUS_SUSPENDED,
}
STATUS_FROM_PROTO: dict[Any, RuntimeStatus] = {v: RuntimeStatus(k) for k, v in STATUS_TO_PROTO.items()}
# CANCELED exists in the proto but no runtime produces it; dtctl reads it as TERMINATED.
STATUS_FROM_PROTO[pb.ORCHESTRATION_STATUS_CANCELED] = TERMINATED


def status_from_proto(value: int) -> RuntimeStatus:
    try:
        return STATUS_FROM_PROTO[value]
    except KeyError:
        raise ValueError(f"unknown orchestration status {value}") from None


# --- scalars ---------------------------------------------------------------------------------------


def timestamp(us: int) -> timestamp_pb2.Timestamp:
    seconds, micros = divmod(us, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000)


def micros(ts: timestamp_pb2.Timestamp) -> int:
    return int(ts.seconds) * 1_000_000 + int(ts.nanos) // 1000


def text(value: str | None) -> wrappers_pb2.StringValue | None:
    return None if value is None else wrappers_pb2.StringValue(value=value)


def optional_text(message: Any, field: str) -> str | None:
    """A ``StringValue`` field's text, or None when the field is absent."""
    return str(getattr(message, field).value) if message.HasField(field) else None


def failure_to_proto(failure: FailureDetails | None) -> pb.TaskFailureDetails | None:
    if failure is None:
        return None
    return pb.TaskFailureDetails(
        errorType=failure.error_type, errorMessage=failure.message, stackTrace=text(failure.stack_trace)
    )


def failure_from_proto(details: pb.TaskFailureDetails) -> FailureDetails:
    return FailureDetails(
        message=details.errorMessage,
        error_type=details.errorType or "builtins.Exception",
        stack_trace=optional_text(details, "stackTrace"),
    )


def reason_from_json(encoded: str | None) -> str | None:
    """dtctl keeps reasons as plain text; the SDKs send them JSON-encoded (a JSON string, usually)."""
    if encoded is None:
        return None
    try:
        value = json.loads(encoded)
    except ValueError:
        return encoded
    return value if isinstance(value, str) else encoded


def reason_to_json(reason: str | None) -> str | None:
    return None if reason is None else json.dumps(reason, ensure_ascii=False)


# --- history: dtctl -> proto -------------------------------------------------------------------------


def _execution_started(e: ExecutionStarted) -> pb.HistoryEvent:
    started = pb.ExecutionStartedEvent(
        name=e.name,
        version=text(e.version),
        tags=e.tags or {},
        input=text(e.input),
        orchestrationInstance=pb.OrchestrationInstance(
            instanceId=e.instance_id, executionId=text(e.execution_id)
        ),
    )
    if e.parent_instance_id is not None:
        started.parentInstance.CopyFrom(
            pb.ParentInstanceInfo(
                taskScheduledId=e.parent_task_id if e.parent_task_id is not None else -1,
                orchestrationInstance=pb.OrchestrationInstance(instanceId=e.parent_instance_id),
            )
        )
    if e.scheduled_start is not None:
        started.scheduledStartTimestamp.CopyFrom(timestamp(e.scheduled_start))
    return pb.HistoryEvent(eventId=-1, timestamp=timestamp(e.timestamp), executionStarted=started)


def _event(event_id: int, e: HistoryEvent, **kind: Any) -> pb.HistoryEvent:
    return pb.HistoryEvent(eventId=event_id, timestamp=timestamp(e.timestamp), **kind)


def _execution_completed(e: ExecutionCompleted) -> pb.HistoryEvent:
    return _event(
        -1,
        e,
        executionCompleted=pb.ExecutionCompletedEvent(
            orchestrationStatus=STATUS_TO_PROTO.get(e.status, pb.ORCHESTRATION_STATUS_FAILED),
            result=text(e.result),
            failureDetails=failure_to_proto(e.failure),
        ),
    )


def _continued_as_new(e: ContinuedAsNew) -> pb.HistoryEvent:
    return _event(
        -1,
        e,
        executionCompleted=pb.ExecutionCompletedEvent(
            orchestrationStatus=pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW, result=text(e.input)
        ),
    )


# dtctl's task id stands in for requestId: an SDK maps it from the call's history event to the response,
# so only the pairing matters, and both events carry the same task id.
_ENTITY_TO_PROTO: dict[type[HistoryEvent], Callable[[Any], pb.HistoryEvent]] = {
    EntityOperationCalled: lambda e: _event(
        e.task_id,
        e,
        entityOperationCalled=pb.EntityOperationCalledEvent(
            requestId=str(e.task_id),
            operation=e.operation,
            input=text(e.input),
            targetInstanceId=text(e.entity_id),
        ),
    ),
    EntityOperationSignaled: lambda e: _event(
        e.task_id,
        e,
        entityOperationSignaled=pb.EntityOperationSignaledEvent(
            requestId=str(e.task_id),
            operation=e.operation,
            input=text(e.input),
            targetInstanceId=text(e.entity_id),
        ),
    ),
    EntityLockRequested: lambda e: _event(
        e.task_id,
        e,
        entityLockRequested=pb.EntityLockRequestedEvent(
            criticalSectionId=e.critical_section_id, lockSet=list(e.entity_ids)
        ),
    ),
    EntityUnlockSent: lambda e: _event(
        e.task_id, e, entityUnlockSent=pb.EntityUnlockSentEvent(criticalSectionId=e.critical_section_id)
    ),
    EntityOperationCompleted: lambda e: _event(
        -1,
        e,
        entityOperationCompleted=pb.EntityOperationCompletedEvent(
            requestId=str(e.task_id), output=text(e.result)
        ),
    ),
    EntityOperationFailed: lambda e: _event(
        -1,
        e,
        entityOperationFailed=pb.EntityOperationFailedEvent(
            requestId=str(e.task_id), failureDetails=failure_to_proto(e.failure)
        ),
    ),
    EntityLockGranted: lambda e: _event(
        -1, e, entityLockGranted=pb.EntityLockGrantedEvent(criticalSectionId=e.critical_section_id)
    ),
}


_TO_PROTO: dict[type[HistoryEvent], Callable[[Any], pb.HistoryEvent]] = {
    ExecutionStarted: _execution_started,
    OrchestratorStarted: lambda e: _event(-1, e, orchestratorStarted=pb.OrchestratorStartedEvent()),
    TaskScheduled: lambda e: _event(
        e.task_id, e, taskScheduled=pb.TaskScheduledEvent(name=e.name, input=text(e.input), tags=e.tags or {})
    ),
    TaskCompleted: lambda e: _event(
        -1, e, taskCompleted=pb.TaskCompletedEvent(taskScheduledId=e.task_id, result=text(e.result))
    ),
    TaskFailed: lambda e: _event(
        -1,
        e,
        taskFailed=pb.TaskFailedEvent(taskScheduledId=e.task_id, failureDetails=failure_to_proto(e.failure)),
    ),
    TimerCreated: lambda e: _event(
        e.task_id, e, timerCreated=pb.TimerCreatedEvent(fireAt=timestamp(e.fire_at))
    ),
    TimerFired: lambda e: _event(
        -1, e, timerFired=pb.TimerFiredEvent(fireAt=timestamp(e.fire_at), timerId=e.task_id)
    ),
    EventRaised: lambda e: _event(-1, e, eventRaised=pb.EventRaisedEvent(name=e.name, input=text(e.input))),
    EventSent: lambda e: _event(
        e.task_id, e, eventSent=pb.EventSentEvent(instanceId=e.instance_id, name=e.name, input=text(e.input))
    ),
    SubOrchestrationCreated: lambda e: _event(
        e.task_id,
        e,
        subOrchestrationInstanceCreated=pb.SubOrchestrationInstanceCreatedEvent(
            instanceId=e.instance_id, name=e.name, version=text(e.version), input=text(e.input)
        ),
    ),
    SubOrchestrationCompleted: lambda e: _event(
        -1,
        e,
        subOrchestrationInstanceCompleted=pb.SubOrchestrationInstanceCompletedEvent(
            taskScheduledId=e.task_id, result=text(e.result)
        ),
    ),
    SubOrchestrationFailed: lambda e: _event(
        -1,
        e,
        subOrchestrationInstanceFailed=pb.SubOrchestrationInstanceFailedEvent(
            taskScheduledId=e.task_id, failureDetails=failure_to_proto(e.failure)
        ),
    ),
    ExecutionSuspended: lambda e: _event(
        -1, e, executionSuspended=pb.ExecutionSuspendedEvent(input=text(reason_to_json(e.reason)))
    ),
    ExecutionResumed: lambda e: _event(
        -1, e, executionResumed=pb.ExecutionResumedEvent(input=text(reason_to_json(e.reason)))
    ),
    ExecutionTerminated: lambda e: _event(
        -1,
        e,
        executionTerminated=pb.ExecutionTerminatedEvent(
            input=text(reason_to_json(e.reason)), recurse=e.recursive
        ),
    ),
    ExecutionCompleted: _execution_completed,
    ContinuedAsNew: _continued_as_new,
    GenericEvent: lambda e: _event(-1, e, genericEvent=pb.GenericEvent(data=text(e.data))),
    # The hub rewrote the history before it (dtctl.core.rewind): to the SDK this is the "jump-start" of
    # an already rewritten rewind, replayed normally (it re-schedules the work left without a result).
    ExecutionRewound: lambda e: _event(
        -1, e, executionRewound=pb.ExecutionRewoundEvent(reason=text(e.reason))
    ),
    # Only native instances record it (the protocol has no such event): shown, never replayed by an SDK.
    TimerCancelled: lambda e: _event(
        -1, e, genericEvent=pb.GenericEvent(data=text(json.dumps({"timerCancelled": e.task_id})))
    ),
    **_ENTITY_TO_PROTO,
}


def convertible_kinds() -> frozenset[str]:
    """The history event kinds :func:`event_to_proto` converts (a test holds it to every kind)."""
    return frozenset(cls.kind for cls in _TO_PROTO)


def event_to_proto(event: HistoryEvent) -> pb.HistoryEvent:
    return _TO_PROTO[type(event)](event)


# --- history: proto -> dtctl (carry-over events of continue-as-new) -------------------------------------


def event_from_proto(event: pb.HistoryEvent) -> HistoryEvent:
    """The events an SDK hands back to the backend: carry-over events (raised events) of continue-as-new."""
    kind = event.WhichOneof("eventType")
    at = micros(event.timestamp)
    if kind == "eventRaised":
        raised = event.eventRaised
        return EventRaised(timestamp=at, name=raised.name, input=optional_text(raised, "input"))
    if kind == "genericEvent":
        return GenericEvent(timestamp=at, data=optional_text(event.genericEvent, "data"))
    raise ValueError(f"a {kind} event cannot be carried over to the next execution")


# --- instances ----------------------------------------------------------------------------------------


def orchestration_state(state: InstanceState, *, include_payloads: bool) -> pb.OrchestrationState:
    out = pb.OrchestrationState(
        instanceId=state.instance_id,
        name=state.name,
        orchestrationStatus=STATUS_TO_PROTO.get(state.status, pb.ORCHESTRATION_STATUS_RUNNING),
        createdTimestamp=timestamp(state.created_at),
        lastUpdatedTimestamp=timestamp(state.updated_at),
        executionId=text(state.execution_id),
        customStatus=text(state.custom_status),
        failureDetails=failure_to_proto(state.failure),
        parentInstanceId=text(state.parent_instance_id),
        version=text(state.version),
        tags=state.tags or {},
    )
    if state.completed_at is not None:
        out.completedTimestamp.CopyFrom(timestamp(state.completed_at))
    if state.scheduled_start is not None:
        out.scheduledStartTimestamp.CopyFrom(timestamp(state.scheduled_start))
    if include_payloads:
        if state.input is not None:
            out.input.CopyFrom(wrappers_pb2.StringValue(value=state.input))
        if state.output is not None:
            out.output.CopyFrom(wrappers_pb2.StringValue(value=state.output))
    return out
