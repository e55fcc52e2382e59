"""History events: one frozen dataclass per kind, and their compact JSON form.

History is the source of truth of an orchestration (event sourcing): every decision the orchestrator
made and every result it received is one of these events, appended in order. Replay rebuilds the
orchestrator's state from them.

Conventions that keep history small and cheap to decode:

- times are integers, microseconds since the Unix epoch, UTC (``timestamp``, ``fire_at``);
- user payloads (inputs, results, event data) stay *encoded* JSON text (``str | None``); they are
  decoded only when user code receives them, so loading a long history does not decode payloads
  nobody reads;
- ``task_id`` is the orchestrator's sequence number of the scheduling action; completions carry the
  task id of the event they complete.

The JSON form leaves out fields that hold their default value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from dtctl.core.failure import FailureDetails
from dtctl.core.payload import parse_json
from dtctl.core.status import STORED, TERMINAL, RuntimeStatus

# Runtime statuses: aliases of the members of dtctl.core.status.RuntimeStatus.
PENDING = RuntimeStatus.PENDING
RUNNING = RuntimeStatus.RUNNING
COMPLETED = RuntimeStatus.COMPLETED
FAILED = RuntimeStatus.FAILED
TERMINATED = RuntimeStatus.TERMINATED
SUSPENDED = RuntimeStatus.SUSPENDED
CONTINUED_AS_NEW = RuntimeStatus.CONTINUED_AS_NEW
TERMINAL_STATUSES = TERMINAL
ALL_STATUSES = STORED


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEvent:
    kind: ClassVar[str] = ""
    timestamp: int = 0

    @property
    def task_ref(self) -> int | None:
        """The task id this event schedules or completes, if it has one."""
        return getattr(self, "task_id", None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionStarted(HistoryEvent):
    kind: ClassVar[str] = "execution_started"
    name: str
    instance_id: str
    execution_id: str
    input: str | None = None
    parent_instance_id: str | None = None
    parent_task_id: int | None = None
    scheduled_start: int | None = None
    version: str | None = None  # the orchestration version (ctx.version); None: unversioned
    tags: dict[str, str] | None = None  # the instance's tags, as started


@dataclass(frozen=True, slots=True, kw_only=True)
class OrchestratorStarted(HistoryEvent):
    """Marks the start of an episode; its timestamp is ``current_utc_datetime`` for the episode."""

    kind: ClassVar[str] = "orchestrator_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskScheduled(HistoryEvent):
    kind: ClassVar[str] = "task_scheduled"
    task_id: int
    name: str
    input: str | None = None
    tags: dict[str, str] | None = None  # call_activity(tags=)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCompleted(HistoryEvent):
    kind: ClassVar[str] = "task_completed"
    task_id: int
    result: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailed(HistoryEvent):
    kind: ClassVar[str] = "task_failed"
    task_id: int
    failure: FailureDetails


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerCreated(HistoryEvent):
    kind: ClassVar[str] = "timer_created"
    task_id: int
    fire_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFired(HistoryEvent):
    kind: ClassVar[str] = "timer_fired"
    task_id: int
    fire_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerCancelled(HistoryEvent):
    """The code cancelled the timer ``task_id`` after it was created: it must never wake the instance."""

    kind: ClassVar[str] = "timer_cancelled"
    task_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRaised(HistoryEvent):
    kind: ClassVar[str] = "event_raised"
    name: str
    input: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSent(HistoryEvent):
    kind: ClassVar[str] = "event_sent"
    task_id: int
    instance_id: str
    name: str
    input: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubOrchestrationCreated(HistoryEvent):
    kind: ClassVar[str] = "sub_orchestration_created"
    task_id: int
    name: str
    instance_id: str
    input: str | None = None
    version: str | None = None  # the child's version


@dataclass(frozen=True, slots=True, kw_only=True)
class SubOrchestrationCompleted(HistoryEvent):
    kind: ClassVar[str] = "sub_orchestration_completed"
    task_id: int
    result: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubOrchestrationFailed(HistoryEvent):
    kind: ClassVar[str] = "sub_orchestration_failed"
    task_id: int
    failure: FailureDetails


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionSuspended(HistoryEvent):
    kind: ClassVar[str] = "execution_suspended"
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionResumed(HistoryEvent):
    kind: ClassVar[str] = "execution_resumed"
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionTerminated(HistoryEvent):
    kind: ClassVar[str] = "execution_terminated"
    reason: str | None = None
    recursive: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionCompleted(HistoryEvent):
    """The last event of an execution that ended COMPLETED, FAILED or TERMINATED."""

    kind: ClassVar[str] = "execution_completed"
    status: str
    result: str | None = None
    failure: FailureDetails | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinuedAsNew(HistoryEvent):
    """The last event of an execution that restarted itself with a new input."""

    kind: ClassVar[str] = "continued_as_new"
    input: str | None = None
    new_execution_id: str | None = None
    new_version: str | None = None  # the next execution's version (the same one unless changed)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionRewound(HistoryEvent):
    """A FAILED execution was rewound: the history before it is the rewound copy (see dtctl.core.rewind).

    The message that wakes the rewound execution; once consumed it stays in history as the record of
    the rewind. ``previous_execution_id`` is the failed execution it was rewound from.
    """

    kind: ClassVar[str] = "execution_rewound"
    reason: str | None = None
    previous_execution_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericEvent(HistoryEvent):
    """A wake-up with no meaning to the orchestrator; ignored by replay."""

    kind: ClassVar[str] = "generic"
    data: str | None = None


# --- entities: what an orchestration asked of entities, and what came back ---------------------------------
#
# ``entity_id`` is the string form ``@name@key``; ``entity_ids`` a lock set, sorted and de-duplicated.


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityOperationCalled(HistoryEvent):
    """The orchestration called an operation on an entity and waits for its response."""

    kind: ClassVar[str] = "entity_operation_called"
    task_id: int
    entity_id: str
    operation: str
    input: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityOperationSignaled(HistoryEvent):
    """The orchestration signalled an entity (one way), now or at ``fire_at``."""

    kind: ClassVar[str] = "entity_operation_signaled"
    task_id: int
    entity_id: str
    operation: str
    input: str | None = None
    fire_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityLockRequested(HistoryEvent):
    """The orchestration asked for the locks of a critical section."""

    kind: ClassVar[str] = "entity_lock_requested"
    task_id: int
    critical_section_id: str
    entity_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityUnlockSent(HistoryEvent):
    """The orchestration left its critical section (or ended inside it) and released the locks."""

    kind: ClassVar[str] = "entity_unlock_sent"
    task_id: int
    critical_section_id: str
    entity_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityOperationCompleted(HistoryEvent):
    kind: ClassVar[str] = "entity_operation_completed"
    task_id: int
    result: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityOperationFailed(HistoryEvent):
    kind: ClassVar[str] = "entity_operation_failed"
    task_id: int
    failure: FailureDetails


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityLockGranted(HistoryEvent):
    """The last entity of the lock set granted its lock: the critical section begins."""

    kind: ClassVar[str] = "entity_lock_granted"
    task_id: int
    critical_section_id: str


EVENT_TYPES: dict[str, type[HistoryEvent]] = {
    cls.kind: cls
    for cls in (
        ExecutionStarted,
        OrchestratorStarted,
        TaskScheduled,
        TaskCompleted,
        TaskFailed,
        TimerCreated,
        TimerFired,
        TimerCancelled,
        EventRaised,
        EventSent,
        SubOrchestrationCreated,
        SubOrchestrationCompleted,
        SubOrchestrationFailed,
        ExecutionSuspended,
        ExecutionResumed,
        ExecutionTerminated,
        ExecutionCompleted,
        ContinuedAsNew,
        ExecutionRewound,
        GenericEvent,
        EntityOperationCalled,
        EntityOperationSignaled,
        EntityLockRequested,
        EntityUnlockSent,
        EntityOperationCompleted,
        EntityOperationFailed,
        EntityLockGranted,
    )
}

# Per class: (field name, default) in declaration order, computed once; encoding is on the hot path.
_FIELDS: dict[type[HistoryEvent], tuple[tuple[str, Any], ...]] = {
    cls: tuple((f.name, f.default) for f in fields(cls)) for cls in EVENT_TYPES.values()
}
_FAILURE_FIELD = "failure"
# Fields holding a tuple travel as JSON lists and are turned back into tuples when decoded.
_TUPLE_FIELDS: dict[type[HistoryEvent], tuple[str, ...]] = {
    EntityLockRequested: ("entity_ids",),
    EntityUnlockSent: ("entity_ids",),
}


def event_to_dict(event: HistoryEvent) -> dict[str, Any]:
    """The event as a JSON-ready dict with ``kind`` first; default-valued fields are left out."""
    out: dict[str, Any] = {"kind": event.kind}
    for name, default in _FIELDS[type(event)]:
        value = getattr(event, name)
        if value is default or value == default:
            continue
        if isinstance(value, FailureDetails):
            value = value.to_dict()
        elif type(value) is tuple:
            value = list(value)
        out[name] = value
    return out


def event_from_dict(data: dict[str, Any]) -> HistoryEvent:
    """The inverse of :func:`event_to_dict`. Unknown kinds and fields raise ``ValueError``."""
    return _event_from_own_dict(dict(data))


def _event_from_own_dict(args: dict[str, Any]) -> HistoryEvent:
    # Consumes ``args``: decoding owns the dict it parsed, so the copy is skipped on the load path.
    kind = args.pop("kind", None)
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown history event kind {kind!r}")
    failure = args.get(_FAILURE_FIELD)
    if isinstance(failure, dict):
        args[_FAILURE_FIELD] = FailureDetails.from_dict(failure)
    for name in _TUPLE_FIELDS.get(cls, ()):
        value = args.get(name)
        if isinstance(value, list):
            args[name] = tuple(value)
    try:
        return cls(**args)
    except TypeError as exc:
        raise ValueError(f"malformed {kind} event: {exc}") from None


# Built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_event(event: HistoryEvent) -> str:
    return _ENCODER.encode(event_to_dict(event))


def decode_event(text: str) -> HistoryEvent:
    data = parse_json(text)
    if not isinstance(data, dict):
        raise ValueError("a history event must be a JSON object")
    return _event_from_own_dict(data)
