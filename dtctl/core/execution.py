"""One orchestration execution under replay: the state the engine keeps, and how it ends.

:class:`Execution` owns everything that changes while history is applied: the orchestrator's generator
and the task it waits for, whether the instance is suspended (and the messages held meanwhile), the
events consumed this episode, and once it is over, its :class:`Ending`. The event handlers
(:mod:`dtctl.core.handlers`) change it only through the methods in "what handlers call"; which
handler table is active follows from that state (live, suspended, ended) and is switched here alone.

This module knows handlers only as a type: the tables are handed in, so nothing here imports them.
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from dtctl.core import payload
from dtctl.core.app import OrchestratorDefinition
from dtctl.core.context import UNLOCK_ENTITIES, UUID_NAMESPACE, Call, OrchestrationContext
from dtctl.core.decision import Action, ContinueAsNew, Decision
from dtctl.core.failure import FailureDetails, qualified_name
from dtctl.core.history import (
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    RUNNING,
    SUSPENDED,
    ContinuedAsNew,
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    HistoryEvent,
    OrchestratorStarted,
)
from dtctl.core.task import CompletableTask, Task, not_a_task_error
from dtctl.errors import NonDeterminismError, OrchestrationStateError, PayloadError

__all__ = ["EndReason", "Ending", "Execution", "Handler", "HandlerTables", "NextExecution"]

_NONDETERMINISM = qualified_name(NonDeterminismError)


class EndReason(Enum):
    """Why an execution ended, which decides what may still change the end."""

    BY_CODE = "by_code"  # the code returned, raised or continued; a later mismatch with history overrules it
    STOPPED = "stopped"  # replay stopped it (non-determinism, terminate): final
    RECORDED = "recorded"  # history records the end (or this engine appended it): later episodes repeat it


@dataclass(frozen=True, slots=True)
class NextExecution:
    """The execution a continue-as-new starts: its id, its (encoded) input, whether events carry over."""

    execution_id: str
    input: str | None = None
    save_events: bool = False
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Ending:
    """How an execution ended. ``next_execution`` is set exactly when the status is CONTINUED_AS_NEW."""

    status: str
    reason: EndReason
    output: str | None = None
    failure: FailureDetails | None = None
    next_execution: NextExecution | None = None

    def final_event(self, timestamp: int) -> HistoryEvent:
        """The last history event of the execution."""
        follow = self.next_execution
        if follow is not None:
            return ContinuedAsNew(
                timestamp=timestamp,
                input=follow.input,
                new_execution_id=follow.execution_id,
                new_version=follow.version,
            )
        return ExecutionCompleted(
            timestamp=timestamp, status=self.status, result=self.output, failure=self.failure
        )

    def continue_as_new(self, carryover: tuple[HistoryEvent, ...]) -> ContinueAsNew | None:
        """What the decision says about the next execution, if there is one."""
        follow = self.next_execution
        if follow is None:
            return None
        return ContinueAsNew(
            execution_id=follow.execution_id,
            input=follow.input,
            carryover_events=carryover,
            version=follow.version,
        )


# A handler is typed by its event class where it is defined; the tables erase that to the base class and
# the registry (handlers.py) guarantees each handler is keyed by the class it takes.
Handler = Callable[["Execution", HistoryEvent], None]
HandlerTable = Mapping[type[HistoryEvent], Handler]


@dataclass(frozen=True, slots=True)
class HandlerTables:
    """The handler table for each state of an execution."""

    live: HandlerTable
    suspended: HandlerTable  # messages to the orchestrator are held
    ended: HandlerTable  # only a recorded end, and recorded scheduling (to catch a mismatch), still matter


def _started_task() -> Task[Any]:
    task: CompletableTask[Any] = CompletableTask()
    task.complete(None)  # sending None into a fresh generator starts it
    return task


_START = _started_task()


class Execution:
    """The replayed state of one execution of one orchestrator."""

    __slots__ = (
        "_awaited",
        "_consumed",
        "_definition",
        "_ending",
        "_gen",
        "_held",
        "_started",
        "_suspended",
        "_tables",
        "context",
        "handlers",
        "pending",
    )

    def __init__(self, definition: OrchestratorDefinition, tables: HandlerTables) -> None:
        self._definition = definition
        self._tables = tables
        # Read-only outside (plain attributes, not properties: handlers reach them on every event).
        self.context = ctx = OrchestrationContext(name=definition.name, converter=definition.converter)
        self.pending = ctx.pending  # the context fills it, handlers empty it
        self.handlers: HandlerTable = tables.live  # the table for the current state
        self._gen: types.GeneratorType[Any, Any, Any] | None = None
        self._awaited: Task[Any] | None = None
        self._started = False
        self._suspended = False
        self._held: list[HistoryEvent] = []
        self._consumed: list[HistoryEvent] = []
        self._ending: Ending | None = None

    # --- what the executor reads --------------------------------------------------------------------

    @property
    def ending(self) -> Ending | None:
        return self._ending

    @property
    def status(self) -> str:
        if self._ending is not None:
            return self._ending.status
        return SUSPENDED if self._suspended else RUNNING

    # --- an episode -----------------------------------------------------------------------------------

    def replay(self, past: Iterable[HistoryEvent]) -> None:
        """Apply history that is already recorded (``is_replaying`` is true meanwhile)."""
        ctx = self.context
        ctx.set_replaying(True)
        # No end check per event: once the code has ended the table is the ended one, where the rest
        # of history can only confirm the end or show a scheduling mismatch.
        for event in past:
            self.handlers[type(event)](self, event)
        ctx.set_replaying(False)

    def episode(self, new: Sequence[HistoryEvent]) -> Decision:
        """Apply this episode's new events and decide."""
        ending = self._ending
        if ending is not None and ending.reason is EndReason.RECORDED:
            return self._settled(ending)
        consumed = self._consumed
        index = 0
        if ending is not None:
            # Ended while replaying: keep only the episode marker, so the end carries this episode's time.
            if new and type(new[0]) is OrchestratorStarted:
                consumed.append(new[0])
                self.context.set_time(new[0].timestamp)
                index = 1
        else:
            ended = self._tables.ended
            for event in new:
                consumed.append(event)
                index += 1
                self.handlers[type(event)](self, event)
                if self.handlers is ended:
                    break
        return self._decide(new[index:])

    def _decide(self, unprocessed: Sequence[HistoryEvent]) -> Decision:
        ctx = self.context
        now = ctx.now_us
        history = self._consumed
        self._consumed = []
        actions: list[Action] = []
        calls = self.pending.calls
        for task_id, call in calls.items():
            actions.append(call.to_action(task_id))
            history.append(call.to_event(task_id, now))
        calls.clear()  # from here on they are history
        ending = self._ending
        if ending is None:
            return Decision(
                status=SUSPENDED if self._suspended else RUNNING,
                actions=tuple(actions),
                new_history=tuple(history),
                custom_status=ctx.custom_status,
            )
        history.append(ending.final_event(now))
        self._ending = replace(ending, reason=EndReason.RECORDED)
        carryover: tuple[HistoryEvent, ...] = ()
        if ending.next_execution is not None and ending.next_execution.save_events:
            rest = [event for event in unprocessed if type(event) is EventRaised]
            carryover = (*ctx.unconsumed_events(), *rest)
        return self._settled(ending, tuple(actions), tuple(history), carryover)

    def _settled(
        self,
        ending: Ending,
        actions: tuple[Action, ...] = (),
        history: tuple[HistoryEvent, ...] = (),
        carryover: tuple[HistoryEvent, ...] = (),
    ) -> Decision:
        """The decision of an ended execution (later episodes repeat it with nothing new)."""
        return Decision(
            status=ending.status,
            actions=actions,
            new_history=history,
            custom_status=self.context.custom_status,
            output=ending.output,
            failure=ending.failure,
            continue_as_new=ending.continue_as_new(carryover),
        )

    # --- what handlers call -----------------------------------------------------------------------------

    def start(self, event: ExecutionStarted) -> None:
        """Run the orchestrator from the top (a duplicated start changes nothing)."""
        if self._started:
            return
        self._started = True
        self.context.begin(event)
        self._run(event.input)

    def deliver(self, task: CompletableTask[Any], encoded: str | None) -> None:
        """Complete ``task`` with a result from history; run the code on if it was waiting for it."""
        task.resolve(encoded, self._definition.converter)
        awaited = self._awaited
        # the usual case first: the code waits for exactly this task (a composite has to be asked)
        if awaited is task or (awaited is not None and awaited.is_complete):
            self._advance(awaited)

    def deliver_failure(self, task: CompletableTask[Any], failure: FailureDetails) -> None:
        """Fail ``task`` with the failure history recorded; run the code on if it was waiting for it."""
        task.reject(failure)
        awaited = self._awaited
        if awaited is task or (awaited is not None and awaited.is_complete):
            self._advance(awaited)

    def mismatch(self, task_id: int, recorded: str, call: Call | None) -> None:
        """History recorded a call with ``task_id`` that the code no longer makes (or makes differently)."""
        ending = self._ending
        if ending is not None and ending.reason is not EndReason.BY_CODE:
            return  # terminated, or an earlier mismatch already failed it
        did = f"called {call.describe()}" if call is not None else "made no call with this task id"
        message = f"task {task_id}: history recorded {recorded} but the code now {did}"
        self.stop(FAILED, failure=FailureDetails(message=message, error_type=_NONDETERMINISM))

    def stop(self, status: str, *, output: str | None = None, failure: FailureDetails | None = None) -> None:
        """End the execution from outside the code: nothing the code asked for in this episode goes out,
        except the release of entity locks (a stopped holder must not keep them)."""
        calls = self.pending.calls
        releases = {task_id: call for task_id, call in calls.items() if call.kind == UNLOCK_ENTITIES}
        calls.clear()
        calls.update(releases)
        self._end(Ending(status, EndReason.STOPPED, output, failure))

    def record_end(
        self,
        status: str,
        *,
        output: str | None = None,
        failure: FailureDetails | None = None,
        next_execution: NextExecution | None = None,
    ) -> None:
        """History records how the execution ended: that is the truth, whatever the code does now."""
        self._end(Ending(status, EndReason.RECORDED, output, failure, next_execution))

    def suspend(self) -> None:
        self._suspended = True
        self.handlers = self._tables.suspended

    def resume(self) -> list[HistoryEvent]:
        """Leave suspension; returns the messages held meanwhile, for the caller to apply in order."""
        if not self._suspended:
            return []
        self._suspended = False
        self.handlers = self._tables.live
        held, self._held = self._held, []
        return held

    def hold(self, event: HistoryEvent) -> None:
        """Keep a message until the instance is resumed."""
        self._held.append(event)

    # --- running the orchestrator code --------------------------------------------------------------------

    def _run(self, encoded_input: str | None) -> None:
        try:
            result = self._definition.fn(self.context, self._definition.decode_input(encoded_input))
        except Exception as error:
            self._raised(error)
            return
        if isinstance(result, types.GeneratorType):
            self._gen = result
            self._advance(_START)
        elif isinstance(result, types.CoroutineType):
            result.close()
            message = "an orchestrator must be a generator function (def with yield), not async def"
            self._raised(OrchestrationStateError(message))
        else:
            self._returned(result)

    def _advance(self, task: Task[Any]) -> None:
        """Run the orchestrator on from the complete ``task`` while it yields tasks that are complete."""
        gen = self._gen
        assert gen is not None
        pending = self.pending
        self._awaited = None
        while True:
            value, error = task.outcome()
            try:
                step = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as stop:
                self._returned(stop.value)
                return
            except Exception as failure:
                self._raised(failure)
                return
            if pending.continue_as_new is not None:  # takes effect at the next yield
                self._continued()
                return
            if not isinstance(step, Task):
                self._raised(not_a_task_error(step))
                return
            if not step.is_complete:
                self._awaited = step
                return
            task = step

    # --- how an execution ends ----------------------------------------------------------------------------

    def _returned(self, value: Any) -> None:
        if self.pending.continue_as_new is not None:
            self._continued()
            return
        try:
            what = f"the output of orchestration {self._definition.name!r}"
            output = payload.encode(value, what=what, converter=self._definition.converter)
        except PayloadError as error:
            self._raised(error)
            return
        self._end(Ending(COMPLETED, EndReason.BY_CODE, output=output))

    def _raised(self, error: BaseException) -> None:
        self._end(Ending(FAILED, EndReason.BY_CODE, failure=FailureDetails.from_exception(error)))

    def _continued(self) -> None:
        request = self.pending.continue_as_new
        assert request is not None
        follow = NextExecution(self._next_execution_id(), request.input, request.save_events, request.version)
        self._end(Ending(CONTINUED_AS_NEW, EndReason.BY_CODE, next_execution=follow))

    def _next_execution_id(self) -> str:
        # Derived, not random: a re-run of the same episode (after a crash) must pick the same id.
        ctx = self.context
        name = f"{ctx.instance_id}_{ctx.execution_id}_{ctx.now_us}_continue_as_new"
        return str(uuid.uuid5(UUID_NAMESPACE, name))

    def _end(self, ending: Ending) -> None:
        if ending.reason is not EndReason.RECORDED:
            # An execution that ends inside a critical section releases its locks in the same decision
            # (when history records the end, it recorded the release too).
            self.context.exit_critical_section()
        self._ending = ending
        self._awaited = None
        self.handlers = self._tables.ended
