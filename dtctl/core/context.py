"""The authoring API: what an orchestrator and an activity see of their instance.

:class:`OrchestrationContext` mirrors the durabletask SDK's context. Everything it offers is
deterministic: the time is the time of the episode being replayed (from history), ids come from a
sequence counter, and uuids are derived from both, so replaying the same history gives the same
decisions.

The replay engine drives a context through a small interface of its own (the section "the replay
engine's half" below; orchestrator code does not call it): it binds the instance, moves the episode
clock, routes external events, schedules retries. What the code asked for and history has not settled
yet sits in a :class:`Pending` record the context fills and the engine empties; sharing it keeps the
replay hot path at one dictionary operation per event.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dtctl.core import payload
from dtctl.core.app import function_name
from dtctl.core.critical_section import CriticalSection, EntityCallTask, EntityLock, LockTask, lock_set
from dtctl.core.decision import (
    Action,
    CallEntity,
    CancelTimer,
    CreateTimer,
    LockEntities,
    ScheduleTask,
    SendEvent,
    SignalEntity,
    StartSubOrchestration,
    UnlockEntities,
)
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.history import (
    EntityLockRequested,
    EntityOperationCalled,
    EntityOperationSignaled,
    EntityUnlockSent,
    EventRaised,
    EventSent,
    ExecutionStarted,
    HistoryEvent,
    SubOrchestrationCreated,
    TaskScheduled,
    TimerCancelled,
    TimerCreated,
)
from dtctl.core.tags import check_tags
from dtctl.core.task import CancellableTask, CompletableTask, RetryableTask, RetryPolicy, TimerTask
from dtctl.core.times import UUID_NAMESPACE as UUID_NAMESPACE
from dtctl.core.times import from_epoch_us as from_epoch_us
from dtctl.core.times import to_epoch_us as to_epoch_us
from dtctl.errors import OrchestrationStateError

if TYPE_CHECKING:  # logging imports threading; core stays free of it at import time
    import logging

    from dtctl.replay_logging import ReplaySafeLogger

__all__ = ["ActivityContext", "ContinueAsNewRequest", "OrchestrationContext", "Pending"]

_ONE_US = timedelta(microseconds=1)

# The kinds of scheduling call, named as the user wrote them (they appear in non-determinism messages).
ACTIVITY = "call_activity"
TIMER = "create_timer"
SUB_ORCHESTRATION = "call_sub_orchestrator"
SEND_EVENT = "send_event"
CANCEL_TIMER = "cancel"  # TimerTask.cancel() of a timer history already records
CALL_ENTITY = "call_entity"
SIGNAL_ENTITY = "signal_entity"
LOCK_ENTITIES = "lock_entities"
UNLOCK_ENTITIES = "unlock_entities"  # leaving a critical section (the with block, or the end)


class Call:
    """A scheduling call the code made, kept until history (or this episode's checkpoint) records it.

    Cheaper than building the decision's action during replay, where almost every call is matched
    against history and never dispatched again.
    """

    __slots__ = ("entities", "fire_at", "kind", "name", "payload", "tags", "target", "version")

    def __init__(
        self,
        kind: str,
        name: str,
        target: str | None,
        data: str | None,
        fire_at: int = 0,
        entities: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        # activity / orchestrator / event name / entity operation / critical section id ("" for timers)
        self.name = name
        # the sub-orchestration instance, the instance an event is sent to, the entity called or signalled
        self.target = target
        self.payload = data
        self.fire_at = fire_at  # a timer's; a delayed signal's (0: not delayed)
        self.entities = entities  # the lock set of a lock or unlock
        self.tags: dict[str, str] | None = None  # an activity's tags
        self.version: str | None = None  # a sub-orchestration's version

    def again(self) -> Call:
        """The same call for another attempt (a retry): the target stays as the template has it."""
        call = Call(self.kind, self.name, self.target, self.payload, self.fire_at, self.entities)
        call.tags, call.version = self.tags, self.version
        return call

    def describe(self) -> str:
        kind = self.kind
        if kind == TIMER:
            return f"{TIMER}()"
        if kind == CANCEL_TIMER:
            return "cancel() of a timer"
        if kind in (SEND_EVENT, CALL_ENTITY, SIGNAL_ENTITY):
            return f"{kind}({self.target!r}, {self.name!r})"
        if kind in (LOCK_ENTITIES, UNLOCK_ENTITIES):
            return f"{kind}({list(self.entities)!r})"
        return f"{kind}({self.name!r})"

    def to_action(self, task_id: int) -> Action:
        name, data = self.name, self.payload
        if self.kind == ACTIVITY:
            return ScheduleTask(task_id=task_id, name=name, input=data, tags=self.tags)
        if self.kind == TIMER:
            return CreateTimer(task_id=task_id, fire_at=self.fire_at)
        if self.kind == CANCEL_TIMER:
            return CancelTimer(task_id=task_id)
        target = self.target or ""
        if self.kind == SUB_ORCHESTRATION:
            return StartSubOrchestration(
                task_id=task_id, name=name, instance_id=target, input=data, version=self.version
            )
        if self.kind == SEND_EVENT:
            return SendEvent(task_id=task_id, instance_id=target, name=name, data=data)
        return self._entity_action(task_id)

    def _entity_action(self, task_id: int) -> Action:
        name, data, target = self.name, self.payload, self.target or ""
        if self.kind == CALL_ENTITY:
            return CallEntity(task_id=task_id, entity_id=target, operation=name, input=data)
        if self.kind == SIGNAL_ENTITY:
            fire_at = self.fire_at or None
            return SignalEntity(
                task_id=task_id, entity_id=target, operation=name, input=data, fire_at=fire_at
            )
        if self.kind == LOCK_ENTITIES:
            return LockEntities(task_id=task_id, critical_section_id=name, entity_ids=self.entities)
        return UnlockEntities(task_id=task_id, critical_section_id=name, entity_ids=self.entities)

    def to_event(self, task_id: int, timestamp: int) -> HistoryEvent:
        """The history event that records this call (the scheduling half of the task id)."""
        name, data, at = self.name, self.payload, timestamp
        if self.kind == ACTIVITY:
            return TaskScheduled(timestamp=at, task_id=task_id, name=name, input=data, tags=self.tags)
        if self.kind == TIMER:
            return TimerCreated(timestamp=at, task_id=task_id, fire_at=self.fire_at)
        if self.kind == CANCEL_TIMER:
            return TimerCancelled(timestamp=at, task_id=task_id)
        target = self.target or ""
        if self.kind == SUB_ORCHESTRATION:
            return SubOrchestrationCreated(
                timestamp=at, task_id=task_id, name=name, instance_id=target, input=data, version=self.version
            )
        if self.kind == SEND_EVENT:
            return EventSent(timestamp=at, task_id=task_id, instance_id=target, name=name, input=data)
        return self._entity_event(task_id, timestamp)

    def _entity_event(self, task_id: int, at: int) -> HistoryEvent:
        name, data, target = self.name, self.payload, self.target or ""
        if self.kind == CALL_ENTITY:
            return EntityOperationCalled(
                timestamp=at, task_id=task_id, entity_id=target, operation=name, input=data
            )
        if self.kind == SIGNAL_ENTITY:
            return EntityOperationSignaled(
                timestamp=at,
                task_id=task_id,
                entity_id=target,
                operation=name,
                input=data,
                fire_at=self.fire_at or None,
            )
        if self.kind == LOCK_ENTITIES:
            return EntityLockRequested(
                timestamp=at, task_id=task_id, critical_section_id=name, entity_ids=self.entities
            )
        return EntityUnlockSent(
            timestamp=at, task_id=task_id, critical_section_id=name, entity_ids=self.entities
        )


@dataclass(frozen=True, slots=True)
class ContinueAsNewRequest:
    """The code called ``continue_as_new``: the next execution's (encoded) input, and whether to carry
    over external events nobody consumed."""

    input: str | None
    save_events: bool
    version: str | None = None  # the next execution's version


class Pending:
    """What the orchestrator code asked for that history has not settled yet.

    The context adds to it as the code runs; the replay engine takes entries out: a call once history
    (or this episode's checkpoint) records it, a task once history completes its work. The engine also
    reads ``continue_as_new`` after every step of the code, since the request takes effect at the next
    ``yield``.
    """

    __slots__ = ("calls", "continue_as_new", "tasks")

    def __init__(self) -> None:
        self.calls: dict[int, Call] = {}  # scheduling calls not yet recorded in history, by task id
        self.tasks: dict[int, CompletableTask[Any]] = {}  # tasks waiting for a completion, by task id
        self.continue_as_new: ContinueAsNewRequest | None = None


# Name and result type hint per called function: computing type hints is far slower than replaying.
# Bounded, so code that makes functions on the fly (closures) cannot grow it forever.
_callees: dict[Any, tuple[str, Any]] = {}
_CALLEES_LIMIT = 4096


def _callee(fn_or_name: Callable[..., Any] | str) -> tuple[str, Any]:
    known = _callees.get(fn_or_name)  # names given as strings are cached too (after their check)
    if known is None:
        if isinstance(fn_or_name, str):
            known = (function_name(fn_or_name), None)
        else:
            known = (function_name(fn_or_name), payload.return_hint(fn_or_name))
        if len(_callees) >= _CALLEES_LIMIT:
            _callees.clear()
        _callees[fn_or_name] = known
    return known


class OrchestrationContext:
    """What an orchestrator function receives as its first argument."""

    __slots__ = (
        "_actions",
        "_arrivals",
        "_converter",
        "_custom_status",
        "_entity_calls",
        "_execution_id",
        "_inbox",
        "_instance_id",
        "_is_replaying",
        "_name",
        "_now_us",
        "_parent_instance_id",
        "_pending",
        "_section",
        "_sequence",
        "_tasks",
        "_uuid_counter",
        "_version",
        "_waiters",
        "default_version",
    )

    def __init__(
        self, instance_id: str = "", *, name: str = "", converter: payload.DataConverter | None = None
    ) -> None:
        self._instance_id = instance_id
        self._converter = converter  # the app's DataConverter; None: dtctl's JSON codec
        self._name = name
        self._execution_id = ""
        self._parent_instance_id: str | None = None
        self._now_us = 0
        self._is_replaying = False
        self._sequence = 0
        self._pending = pending = Pending()
        # The pending maps, held directly too: scheduling is on the replay hot path.
        self._actions = pending.calls
        self._tasks = pending.tasks
        self._waiters: dict[str, deque[CompletableTask[Any]]] = {}  # by casefolded event name
        self._inbox: dict[str, deque[tuple[int, EventRaised]]] = {}  # events nobody waited for yet
        self._arrivals = 0
        self._custom_status: str | None = None
        self._uuid_counter = 0
        self._version: str | None = None
        # Given to sub-orchestrations started without a version (VersioningOptions.default_version).
        self.default_version: str | None = None
        self._section: CriticalSection | None = None
        self._entity_calls: dict[int, str] = {}  # entity calls in flight inside a critical section

    # --- what the orchestrator reads ---------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def parent_instance_id(self) -> str | None:
        return self._parent_instance_id

    @property
    def version(self) -> str | None:
        """The orchestration's version, as started (None: started without one)."""
        return self._version

    @property
    def execution_id(self) -> str:
        return self._execution_id

    @property
    def name(self) -> str:
        return self._name

    @property
    def current_utc_datetime(self) -> datetime:
        """The time of the episode being processed (naive UTC), the same on every replay."""
        return from_epoch_us(self._now_us)

    @property
    def is_replaying(self) -> bool:
        return self._is_replaying

    # --- durable work ---------------------------------------------------------------------------------

    def call_activity(
        self,
        activity: Callable[..., Any] | str,
        *,
        input: Any = None,
        retry_policy: RetryPolicy | None = None,
        tags: dict[str, str] | None = None,
        return_type: Any = None,
    ) -> CompletableTask[Any]:
        """Schedule an activity; the task completes with its (decoded) result. ``tags`` are recorded
        with the task in history (string keys and values)."""
        name, hint = _callee(activity)
        data = payload.encode(input, what=f"the input of activity {name!r}", converter=self._converter)
        call = Call(ACTIVITY, name, None, data)
        if tags:
            call.tags = check_tags(tags)
        return self._start_work(call, f"activity {name!r}", return_type or hint, retry_policy)

    def call_sub_orchestrator(
        self,
        orchestrator: Callable[..., Any] | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        retry_policy: RetryPolicy | None = None,
        version: str | None = None,
        return_type: Any = None,
    ) -> CompletableTask[Any]:
        """Start a child orchestration (id ``"{instance_id}:{task_id:04d}"`` unless given), at
        ``version`` (by default the worker's ``default_version``, else unversioned)."""
        name, hint = _callee(orchestrator)
        if self._section is not None:
            raise OrchestrationStateError(
                f"call_sub_orchestrator({name!r}): while holding locks, cannot call sub-orchestrators"
            )
        what = f"the input of sub-orchestration {name!r}"
        data = payload.encode(input, what=what, converter=self._converter)
        call = Call(SUB_ORCHESTRATION, name, instance_id, data)
        call.version = version or self.default_version
        return self._start_work(call, f"sub-orchestration {name!r}", return_type or hint, retry_policy)

    def create_timer(self, fire_at: datetime | timedelta) -> TimerTask:
        """A task that completes at ``fire_at`` (a UTC datetime, or a delay from the current time)."""
        if isinstance(fire_at, timedelta):
            at = self._now_us + fire_at // _ONE_US
        elif isinstance(fire_at, datetime):
            at = to_epoch_us(fire_at)
        else:
            raise TypeError(f"create_timer takes a datetime or a timedelta, not {type(fire_at).__qualname__}")
        return self._start_timer(at)

    def wait_for_external_event(self, name: str, *, data_type: Any = None) -> CancellableTask[Any]:
        """A task completed by the next event called ``name`` (case-insensitive), with its data.

        Events that arrived before anyone waited are delivered first, oldest first. Cancelling the
        task leaves the queue of waiters: a later event of that name goes to the next waiter (or is
        kept for a later wait), never to the cancelled one.
        """
        key = name.casefold()
        task: CancellableTask[Any] = CancellableTask(f"event {name!r}", data_type)
        buffered = self._inbox.get(key)
        if buffered:
            task.complete(payload.decode(buffered.popleft()[1].input, data_type, converter=self._converter))
            return task
        waiters = self._waiters.get(key)
        if waiters is None:
            self._waiters[key] = waiters = deque()
        waiters.append(task)
        task.set_cancel_handler(lambda: waiters.remove(task))
        return task

    def send_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        """Raise ``event_name`` on another instance (fire and forget)."""
        what = f"the data of event {event_name!r}"
        encoded = payload.encode(data, what=what, converter=self._converter)
        self._add_call(Call(SEND_EVENT, event_name, instance_id, encoded))

    # --- entities -----------------------------------------------------------------------------------------

    def call_entity(
        self,
        entity: EntityInstanceId | str,
        operation: str,
        input: Any = None,
        *,
        return_type: Any = None,
    ) -> CompletableTask[Any]:
        """Call ``operation`` on an entity; the task completes with its (decoded) result, or fails with
        :class:`~dtctl.core.critical_section.EntityOperationFailedException` if the operation raised."""
        entity_id = EntityInstanceId.of(entity)
        target = str(entity_id)
        section = self._section
        if section is not None:
            section.check_call(target)
        what = f"the input of operation {operation!r} on entity {target!r}"
        data = payload.encode(input, what=what, converter=self._converter)
        task = EntityCallTask(entity_id, operation, return_type)
        task_id = self._add_call(Call(CALL_ENTITY, operation, target, data))
        self._tasks[task_id] = task
        if section is not None:
            self._entity_calls[task_id] = target
        return task

    def signal_entity(
        self,
        entity_id: EntityInstanceId | str,
        operation_name: str,
        input: Any = None,
        signal_time: datetime | timedelta | None = None,
    ) -> None:
        """Send ``operation_name`` to an entity, one way; ``signal_time`` delays its delivery."""
        target = str(EntityInstanceId.of(entity_id))
        if self._section is not None:
            self._section.check_signal(target)
        what = f"the input of operation {operation_name!r} on entity {target!r}"
        data = payload.encode(input, what=what, converter=self._converter)
        fire_at = 0
        if isinstance(signal_time, timedelta):
            fire_at = self._now_us + signal_time // _ONE_US
        elif isinstance(signal_time, datetime):
            fire_at = to_epoch_us(signal_time)
        elif signal_time is not None:
            raise TypeError(
                f"signal_time must be a datetime or a timedelta, not {type(signal_time).__qualname__}"
            )
        self._add_call(Call(SIGNAL_ENTITY, operation_name, target, data, fire_at))

    def lock_entities(self, entities: Iterable[EntityInstanceId | str]) -> CompletableTask[EntityLock]:
        """A task that completes once every entity in ``entities`` is locked for this orchestration::

            with (yield ctx.lock_entities([a, b])):
                ...  # the critical section: only this orchestration operates on a and b

        Locks are taken one entity after another in id order; leaving the ``with`` block (or the end of
        the execution) releases them.
        """
        if self._section is not None:
            raise OrchestrationStateError(
                "lock_entities: must not enter another critical section from within a critical section"
            )
        locks = lock_set(entities)
        section_id = self.new_uuid()
        self._section = CriticalSection(section_id, locks)
        task = LockTask(EntityLock(self))
        self._tasks[self._add_call(Call(LOCK_ENTITIES, section_id, None, None, entities=locks))] = task
        return task

    def is_in_critical_section(self) -> bool:
        """True between ``lock_entities`` and the release of its locks."""
        return self._section is not None

    def get_locked_entities(self) -> list[EntityInstanceId]:
        """The entities of the current critical section (none outside one)."""
        section = self._section
        return [] if section is None else [EntityInstanceId.parse(entity) for entity in section.locks]

    def exit_critical_section(self) -> None:
        """Release the current critical section's locks (what leaving the ``with`` block does)."""
        section = self._section
        if section is None:
            return
        self._section = None
        self._entity_calls.clear()
        self._add_call(Call(UNLOCK_ENTITIES, section.id, None, None, entities=section.locks))

    def continue_as_new(
        self, new_input: Any, *, save_events: bool = False, new_version: str | None = None
    ) -> None:
        """Restart as a new execution with ``new_input`` once the orchestrator yields or returns.

        With ``save_events``, external events nobody consumed yet are carried into the new execution.
        ``new_version`` moves the instance to another version (by default it keeps its own).
        """
        encoded = payload.encode(new_input, what="the input of continue_as_new", converter=self._converter)
        version = new_version or self._version
        self._pending.continue_as_new = ContinueAsNewRequest(encoded, save_events, version)

    def set_custom_status(self, custom_status: Any) -> None:
        self._custom_status = payload.encode(
            custom_status, what="the custom status", converter=self._converter
        )

    def new_uuid(self) -> str:
        """A uuid that is the same on every replay (the durabletask SDK's derivation)."""
        moment = self.current_utc_datetime.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        name = f"{self._instance_id}_{moment}_{self._uuid_counter}"
        self._uuid_counter += 1
        return str(uuid.uuid5(UUID_NAMESPACE, name))

    def create_replay_safe_logger(self, logger: logging.Logger) -> ReplaySafeLogger:
        """``logger`` wrapped in a :class:`logging.LoggerAdapter` that drops records while replaying."""
        from dtctl.replay_logging import ReplaySafeLogger  # loads logging (and threading): only when asked

        return ReplaySafeLogger(logger, lambda: self._is_replaying)

    # --- the replay engine's half ---------------------------------------------------------------------

    @property
    def pending(self) -> Pending:
        """What the code asked for and history has not settled yet (the engine empties it)."""
        return self._pending

    @property
    def now_us(self) -> int:
        """The episode's time in epoch microseconds (``current_utc_datetime`` as an integer)."""
        return self._now_us

    @property
    def custom_status(self) -> str | None:
        """The encoded value of the last ``set_custom_status``."""
        return self._custom_status

    def begin(self, started: ExecutionStarted) -> None:
        """Bind the context to the execution history started (the clock only if no episode set it)."""
        self._instance_id = started.instance_id
        self._execution_id = started.execution_id
        self._parent_instance_id = started.parent_instance_id
        self._version = started.version
        if self._now_us == 0:
            self._now_us = started.timestamp

    def set_time(self, now_us: int) -> None:
        """A new episode starts: its time is what the code sees until the next one."""
        self._now_us = now_us

    def set_replaying(self, replaying: bool) -> None:
        self._is_replaying = replaying

    def receive_event(self, event: EventRaised) -> CompletableTask[Any] | None:
        """The task waiting longest for ``event``, or None after keeping the event for a later wait."""
        key = event.name.casefold()
        waiters = self._waiters.get(key)
        if waiters:
            return waiters.popleft()
        queue = self._inbox.get(key)
        if queue is None:
            self._inbox[key] = queue = deque()
        queue.append((self._arrivals, event))
        self._arrivals += 1
        return None

    def schedule_retry(self, task: RetryableTask[Any]) -> bool:
        """After a failed attempt: start the timer before the next one, or False to give up."""
        delay = task.next_delay_us(self._now_us)
        if delay is None:
            return False
        self._start_timer(self._now_us + delay, task)
        return True

    def retry(self, task: RetryableTask[Any]) -> None:
        """The retry timer fired: the same work again, under a new task id, for the same task."""
        task.attempt += 1
        template: Call = task.call
        self._tasks[self._add_call(template.again())] = task

    def entity_responded(self, task_id: int) -> None:
        """The response of entity call ``task_id`` arrived: inside a critical section, the entity may be
        called again."""
        target = self._entity_calls.pop(task_id, None)
        if target is not None and self._section is not None:
            self._section.returned(target)

    def lock_granted(self, section_id: str) -> bool:
        """The locks of ``section_id`` are held; False when this is not the section waiting for them."""
        section = self._section
        if section is None or section.id != section_id or not section.acquiring:
            return False
        section.granted()
        return True

    def unconsumed_events(self) -> list[EventRaised]:
        """Events nobody waited for, in arrival order (what ``save_events`` carries over)."""
        pending = [entry for queue in self._inbox.values() for entry in queue]
        pending.sort(key=lambda entry: entry[0])
        return [event for _, event in pending]

    # --- scheduling ------------------------------------------------------------------------------------

    def _add_call(self, call: Call) -> int:
        task_id = self._sequence
        self._sequence = task_id + 1
        if call.kind == SUB_ORCHESTRATION and call.target is None:
            call.target = f"{self._instance_id}:{task_id:04d}"
        self._actions[task_id] = call
        return task_id

    def _start_work(
        self, call: Call, label: str, hint: Any, retry_policy: RetryPolicy | None
    ) -> CompletableTask[Any]:
        task: CompletableTask[Any]
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise TypeError(f"retry_policy must be a RetryPolicy, not {type(retry_policy).__qualname__}")
        if retry_policy is None:
            task = CompletableTask(label, hint)
        else:
            # the template keeps target None when the id was defaulted: each attempt gets its own child id
            template = call.again()
            task = RetryableTask(label, hint, retry_policy, template, self._now_us)
        self._tasks[self._add_call(call)] = task
        return task

    def _start_timer(self, fire_at: int, retry_of: RetryableTask[Any] | None = None) -> TimerTask:
        task = TimerTask(fire_at, retry_of)
        task_id = self._add_call(Call(TIMER, "", None, None, fire_at))
        self._tasks[task_id] = task
        task.set_cancel_handler(lambda: self._cancel_timer(task_id))
        return task

    def _cancel_timer(self, task_id: int) -> None:
        # The timer's TimerFired is ignored from now on, in this episode and in every replay.
        self._tasks.pop(task_id, None)
        actions = self._actions
        call = actions.get(task_id)
        if call is not None and call.kind == TIMER:
            del actions[task_id]  # not recorded yet: the timer is simply never created
        else:
            # Recorded in an earlier episode: ask the hub to drop its pending timer_fired, and record
            # the cancellation (TimerCancelled) so a replay knows the request went out already.
            actions[task_id] = Call(CANCEL_TIMER, "", None, None)


class ActivityContext:
    """What an activity function receives as its first argument."""

    __slots__ = ("_orchestration_id", "_task_id")

    def __init__(self, orchestration_id: str, task_id: int) -> None:
        self._orchestration_id = orchestration_id
        self._task_id = task_id

    @property
    def orchestration_id(self) -> str:
        """The instance id of the orchestration that scheduled this activity."""
        return self._orchestration_id

    @property
    def instance_id(self) -> str:
        return self._orchestration_id

    @property
    def task_id(self) -> int:
        return self._task_id

    def __repr__(self) -> str:
        return f"ActivityContext(orchestration_id={self._orchestration_id!r}, task_id={self._task_id})"
