"""Helpers for testing orchestrators without a hub: build a history, replay it, look at the decision.

::

    from datetime import datetime, timedelta
    from dtctl.core.replay import execute
    from dtctl.testing import HistoryBuilder

    h = HistoryBuilder(name="hello_cities", start=datetime(2024, 1, 1))
    past = h.orchestrator_started().started(input=None).task_scheduled(0, "say_hello", "Tokyo").take()
    new = h.orchestrator_started(at=timedelta(seconds=1)).task_completed(0, "Hello Tokyo!").take()
    decision = execute(hello_cities, past, new)
    assert decision.actions[0].name == "say_hello"

Methods take plain Python values and encode payloads the way dtctl stores them; every event is stamped
with the builder's clock, which only ``orchestrator_started(at=...)`` moves. ``take()`` returns the
events added since the previous ``take()``, so one builder can produce the past and then each episode.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from dtctl.core import payload
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    COMPLETED,
    FAILED,
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
from dtctl.core.times import UUID_NAMESPACE, from_epoch_us, to_epoch_us

__all__ = ["DEFAULT_START", "HistoryBuilder", "failure_of", "run_orchestration"]

DEFAULT_START = datetime(2024, 1, 1)

When = datetime | timedelta


def failure_of(error: BaseException | FailureDetails) -> FailureDetails:
    """The failure details history stores for ``error``."""
    return error if isinstance(error, FailureDetails) else FailureDetails.from_exception(error)


class HistoryBuilder:
    """Builds history events for one execution of an orchestration."""

    def __init__(
        self,
        instance_id: str = "instance",
        name: str = "orchestrator",
        *,
        start: datetime = DEFAULT_START,
        execution_id: str = "execution-1",
        data_converter: payload.DataConverter | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.data_converter = data_converter  # encodes payloads as the app's converter would
        self.name = name
        self.execution_id = execution_id
        self.now = to_epoch_us(start)  # epoch µs, UTC
        self.events: list[HistoryEvent] = []
        self._taken = 0
        self._uuids = 0  # ctx.new_uuid() calls the builder stood in for (critical section ids)
        self._section: str | None = None  # the last critical section requested

    # --- reading ---------------------------------------------------------------------------------

    @property
    def current_time(self) -> datetime:
        """The builder's clock as naive UTC, as ``current_utc_datetime`` reports it."""
        return from_epoch_us(self.now)

    def build(self) -> list[HistoryEvent]:
        """Every event added so far."""
        return list(self.events)

    def take(self) -> list[HistoryEvent]:
        """The events added since the last ``take()``."""
        taken = self.events[self._taken :]
        self._taken = len(self.events)
        return taken

    def _encode(self, value: Any) -> str | None:
        return payload.encode(value, converter=self.data_converter)

    def add(self, event: HistoryEvent) -> HistoryBuilder:
        self.events.append(event)
        return self

    # --- the execution ---------------------------------------------------------------------------

    def orchestrator_started(self, at: When | None = None) -> HistoryBuilder:
        """Start an episode; ``at`` is a time, or a delay after the builder's clock."""
        if isinstance(at, timedelta):
            self.now += at // timedelta(microseconds=1)
        elif isinstance(at, datetime):
            self.now = to_epoch_us(at)
        return self.add(OrchestratorStarted(timestamp=self.now))

    def started(
        self,
        input: Any = None,
        *,
        parent_instance_id: str | None = None,
        parent_task_id: int | None = None,
        version: str | None = None,
    ) -> HistoryBuilder:
        """The execution's start; ``version`` is what the orchestrator reads as ``ctx.version``."""
        return self.add(
            ExecutionStarted(
                timestamp=self.now,
                name=self.name,
                instance_id=self.instance_id,
                execution_id=self.execution_id,
                input=self._encode(input),
                parent_instance_id=parent_instance_id,
                parent_task_id=parent_task_id,
                version=version,
            )
        )

    def completed(self, result: Any = None) -> HistoryBuilder:
        encoded = self._encode(result)
        return self.add(ExecutionCompleted(timestamp=self.now, status=COMPLETED, result=encoded))

    def failed(self, error: BaseException | FailureDetails) -> HistoryBuilder:
        return self.add(ExecutionCompleted(timestamp=self.now, status=FAILED, failure=failure_of(error)))

    def continued_as_new(self, input: Any = None, new_execution_id: str | None = None) -> HistoryBuilder:
        encoded = self._encode(input)
        return self.add(ContinuedAsNew(timestamp=self.now, input=encoded, new_execution_id=new_execution_id))

    def suspended(self, reason: str | None = None) -> HistoryBuilder:
        return self.add(ExecutionSuspended(timestamp=self.now, reason=reason))

    def resumed(self, reason: str | None = None) -> HistoryBuilder:
        return self.add(ExecutionResumed(timestamp=self.now, reason=reason))

    def terminated(self, reason: str | None = None, *, recursive: bool = True) -> HistoryBuilder:
        return self.add(ExecutionTerminated(timestamp=self.now, reason=reason, recursive=recursive))

    def rewound(self, reason: str | None = None, previous_execution_id: str | None = None) -> HistoryBuilder:
        previous = previous_execution_id
        return self.add(ExecutionRewound(timestamp=self.now, reason=reason, previous_execution_id=previous))

    def generic(self, data: str | None = None) -> HistoryBuilder:
        return self.add(GenericEvent(timestamp=self.now, data=data))

    # --- activities --------------------------------------------------------------------------------

    def task_scheduled(self, task_id: int, name: str, input: Any = None) -> HistoryBuilder:
        encoded = self._encode(input)
        return self.add(TaskScheduled(timestamp=self.now, task_id=task_id, name=name, input=encoded))

    def task_completed(self, task_id: int, result: Any = None) -> HistoryBuilder:
        return self.add(TaskCompleted(timestamp=self.now, task_id=task_id, result=self._encode(result)))

    def task_failed(self, task_id: int, error: BaseException | FailureDetails) -> HistoryBuilder:
        return self.add(TaskFailed(timestamp=self.now, task_id=task_id, failure=failure_of(error)))

    # --- timers ------------------------------------------------------------------------------------

    def fire_time(self, fire_at: When) -> int:
        """Epoch µs of a timer due at ``fire_at`` (a time, or a delay after the builder's clock)."""
        if isinstance(fire_at, timedelta):
            return self.now + fire_at // timedelta(microseconds=1)
        return to_epoch_us(fire_at)

    def timer_created(self, task_id: int, fire_at: When) -> HistoryBuilder:
        return self.add(TimerCreated(timestamp=self.now, task_id=task_id, fire_at=self.fire_time(fire_at)))

    def timer_fired(self, task_id: int, fire_at: When | None = None) -> HistoryBuilder:
        """The timer ``task_id`` fired; ``fire_at`` defaults to the time its timer_created recorded."""
        at = self.fire_time(fire_at) if fire_at is not None else self._recorded_fire_time(task_id)
        return self.add(TimerFired(timestamp=self.now, task_id=task_id, fire_at=at))

    def timer_cancelled(self, task_id: int) -> HistoryBuilder:
        """The code cancelled timer ``task_id`` (created in an earlier episode)."""
        return self.add(TimerCancelled(timestamp=self.now, task_id=task_id))

    def _recorded_fire_time(self, task_id: int) -> int:
        for event in reversed(self.events):
            if isinstance(event, TimerCreated) and event.task_id == task_id:
                return event.fire_at
        return self.now

    # --- events ------------------------------------------------------------------------------------

    def event_raised(self, name: str, data: Any = None) -> HistoryBuilder:
        return self.add(EventRaised(timestamp=self.now, name=name, input=self._encode(data)))

    def event_sent(self, task_id: int, instance_id: str, name: str, data: Any = None) -> HistoryBuilder:
        encoded = self._encode(data)
        return self.add(
            EventSent(timestamp=self.now, task_id=task_id, instance_id=instance_id, name=name, input=encoded)
        )

    # --- sub-orchestrations --------------------------------------------------------------------------

    def sub_orchestration_created(
        self, task_id: int, name: str, input: Any = None, *, instance_id: str | None = None
    ) -> HistoryBuilder:
        """``instance_id`` defaults to the id the context gives a child: ``"{instance_id}:{task_id:04d}"``."""
        child = instance_id if instance_id is not None else f"{self.instance_id}:{task_id:04d}"
        encoded = self._encode(input)
        event = SubOrchestrationCreated(
            timestamp=self.now, task_id=task_id, name=name, instance_id=child, input=encoded
        )
        return self.add(event)

    def sub_orchestration_completed(self, task_id: int, result: Any = None) -> HistoryBuilder:
        encoded = self._encode(result)
        return self.add(SubOrchestrationCompleted(timestamp=self.now, task_id=task_id, result=encoded))

    def sub_orchestration_failed(self, task_id: int, error: BaseException | FailureDetails) -> HistoryBuilder:
        failure = failure_of(error)
        return self.add(SubOrchestrationFailed(timestamp=self.now, task_id=task_id, failure=failure))

    # --- entities ------------------------------------------------------------------------------------

    def new_uuid(self, counter: int) -> str:
        """What ``ctx.new_uuid()`` returns as its ``counter``-th call (from 0) in an episode at the
        builder's clock (the engine derives critical section ids this way)."""
        moment = self.current_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return str(uuid.uuid5(UUID_NAMESPACE, f"{self.instance_id}_{moment}_{counter}"))

    def entity_operation_called(
        self, task_id: int, entity_id: EntityInstanceId | str, operation: str, input: Any = None
    ) -> HistoryBuilder:
        target = str(EntityInstanceId.of(entity_id))
        event = EntityOperationCalled(
            timestamp=self.now,
            task_id=task_id,
            entity_id=target,
            operation=operation,
            input=payload.encode(input),
        )
        return self.add(event)

    def entity_operation_signaled(
        self,
        task_id: int,
        entity_id: EntityInstanceId | str,
        operation: str,
        input: Any = None,
        *,
        fire_at: When | None = None,
    ) -> HistoryBuilder:
        target = str(EntityInstanceId.of(entity_id))
        at = self.fire_time(fire_at) if fire_at is not None else None
        event = EntityOperationSignaled(
            timestamp=self.now,
            task_id=task_id,
            entity_id=target,
            operation=operation,
            input=payload.encode(input),
            fire_at=at,
        )
        return self.add(event)

    def entity_lock_requested(
        self,
        task_id: int,
        entity_ids: Iterable[EntityInstanceId | str],
        *,
        critical_section_id: str | None = None,
    ) -> HistoryBuilder:
        """The lock set is sorted and de-duplicated as ``lock_entities`` does; the section id defaults
        to the next ``new_uuid`` (the context's, when the code made no other uuid)."""
        locks = tuple(sorted({str(EntityInstanceId.of(e)) for e in entity_ids}))
        if critical_section_id is None:
            critical_section_id = self.new_uuid(self._uuids)
            self._uuids += 1
        self._section = critical_section_id
        event = EntityLockRequested(
            timestamp=self.now, task_id=task_id, critical_section_id=critical_section_id, entity_ids=locks
        )
        return self.add(event)

    def entity_lock_granted(self, task_id: int, *, critical_section_id: str | None = None) -> HistoryBuilder:
        """The section id defaults to the last one requested."""
        section = critical_section_id or self._section or ""
        return self.add(EntityLockGranted(timestamp=self.now, task_id=task_id, critical_section_id=section))

    def entity_unlock_sent(
        self,
        task_id: int,
        entity_ids: Iterable[EntityInstanceId | str],
        *,
        critical_section_id: str | None = None,
    ) -> HistoryBuilder:
        locks = tuple(sorted({str(EntityInstanceId.of(e)) for e in entity_ids}))
        section = critical_section_id or self._section or ""
        return self.add(
            EntityUnlockSent(
                timestamp=self.now, task_id=task_id, critical_section_id=section, entity_ids=locks
            )
        )

    def entity_operation_completed(self, task_id: int, result: Any = None) -> HistoryBuilder:
        encoded = payload.encode(result)
        return self.add(EntityOperationCompleted(timestamp=self.now, task_id=task_id, result=encoded))

    def entity_operation_failed(self, task_id: int, error: BaseException | FailureDetails) -> HistoryBuilder:
        failure = failure_of(error)
        return self.add(EntityOperationFailed(timestamp=self.now, task_id=task_id, failure=failure))


def run_orchestration(app: Any, orchestrator: Any, input: Any = None, **options: Any) -> Any:
    """Run ``orchestrator`` of ``app`` to the end in this process, on a throw-away hub, skipping time.

    The real hub, worker loop and replay engine, stepped in-process; durable timers fire at once (the
    hub's clock jumps to them). Returns the final instance state::

        state = run_orchestration(app, hello_cities)
        assert state.status == "COMPLETED"
        assert payload.decode(state.output) == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]

    Options: ``instance_id``, ``events`` (``[(name, data), …]`` raised right after the start and buffered
    until awaited), ``max_steps``. See :func:`dtctl.runtime.inprocess.run_orchestration`.
    """
    from dtctl.runtime.inprocess import run_orchestration as run  # the runtime is imported only when used

    return run(app, orchestrator, input, **options)


def replay_case(app: Any, case: Any) -> Any:
    """Replay an exported case file (``dtctl history export ID > case.json``) against ``app``.

    ``case`` is the file's path (or a case already read with :func:`dtctl.casefile.read_case`). Returns
    the :class:`dtctl.replaycheck.CheckReport`; a bug report's test reads::

        report = replay_case(app, "tests/cases/order-1.json")
        assert not report.broken, report.broken[0].mismatch.message
    """
    from dtctl import casefile, replaycheck
    from dtctl.hub.base import ImportedInstance

    found = case if isinstance(case, ImportedInstance) else casefile.read_case(case)
    return replaycheck.check_case(app, found)
