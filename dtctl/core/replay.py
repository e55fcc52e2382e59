"""Replay: rebuild an orchestration's state from its history, feed new events, decide what happens next.

An episode is ``execute(past, new)``: the orchestrator code is replayed against ``past`` (its history;
``is_replaying`` is true and every scheduling event must match the call the code makes now), then the
``new`` events are applied, and the result is one :class:`~dtctl.core.decision.Decision`.

:class:`OrchestrationExecutor` keeps the replayed state alive between episodes: after ``execute`` a
worker may call ``resume(next_new_events)`` and skip the replay (the warm path). The contract, held by
property tests: ``resume(new2)`` after ``execute(past, new1)`` decides exactly what a fresh
``execute(past + d1.new_history, new2)`` decides.

Events are dispatched through tables of small handlers keyed by event type; the tables swap while the
instance is suspended (incoming events are held) and once the execution has ended.
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dtctl.core import payload
from dtctl.core.app import OrchestratorDefinition, function_name
from dtctl.core.context import UUID_NAMESPACE, Call, OrchestrationContext
from dtctl.core.decision import Action, ContinueAsNew, Decision
from dtctl.core.failure import FailureDetails, qualified_name
from dtctl.core.handlers import BY_CODE, ENDED, HANDLERS, RECORDED, STOPPED, Handler, on_orchestrator_started
from dtctl.core.history import (
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    RUNNING,
    SUSPENDED,
    ContinuedAsNew,
    EventRaised,
    ExecutionCompleted,
    HistoryEvent,
    OrchestratorStarted,
)
from dtctl.core.task import CompletableTask, Task, TaskFailedError, not_a_task_error
from dtctl.errors import NonDeterminismError, OrchestrationStateError, PayloadError

__all__ = ["OrchestrationExecutor", "Orchestrator", "as_definition", "execute"]

Orchestrator = OrchestratorDefinition | Callable[..., Any]

_NONDETERMINISM = qualified_name(NonDeterminismError)


def _started_task() -> Task[Any]:
    task: Task[Any] = Task()
    task._finish(None)  # sending None into a fresh generator starts it
    return task


_START = _started_task()


class OrchestrationExecutor:
    """The replayed state of one orchestration execution, fed one episode at a time."""

    __slots__ = (
        "_awaited",
        "_consumed",
        "_ctx",
        "_definition",
        "_failure",
        "_gen",
        "_held",
        "_next_execution",
        "_output",
        "_reason",
        "_started",
        "_status",
        "_suspended",
        "_table",
    )

    def __init__(self, orchestrator: Orchestrator) -> None:
        self._definition = as_definition(orchestrator)
        self._reset()

    def _reset(self) -> None:
        self._ctx = OrchestrationContext(name=self._definition.name)
        self._gen: types.GeneratorType[Any, Any, Any] | None = None
        self._awaited: Task[Any] | None = None
        self._table: dict[type[HistoryEvent], Handler] = HANDLERS
        self._started = False
        self._suspended = False
        self._held: list[HistoryEvent] = []
        self._consumed: list[HistoryEvent] = []
        self._status: str | None = None  # set once the execution ended
        self._reason = 0
        self._output: str | None = None
        self._failure: FailureDetails | None = None
        self._next_execution: tuple[str | None, str, bool] | None = None  # input, execution id, save_events

    # --- public ---------------------------------------------------------------------------------------

    @property
    def context(self) -> OrchestrationContext:
        return self._ctx

    @property
    def status(self) -> str:
        """The runtime status after the last episode."""
        if self._status is not None:
            return self._status
        return SUSPENDED if self._suspended else RUNNING

    @property
    def is_finished(self) -> bool:
        return self._status is not None

    def execute(self, past: Iterable[HistoryEvent], new: Sequence[HistoryEvent]) -> Decision:
        """One episode from scratch: replay ``past``, apply ``new``, decide."""
        self._reset()
        self._replay(past)
        return self._episode(new)

    def resume(self, new: Sequence[HistoryEvent]) -> Decision:
        """The next episode on the state the previous one left (no replay)."""
        return self._episode(new)

    # --- the episode ----------------------------------------------------------------------------------

    def _replay(self, past: Iterable[HistoryEvent]) -> None:
        ctx = self._ctx
        ctx._is_replaying = True
        # No end check per event: once the code has ended the table is ENDED, where the rest of
        # history can only confirm the end or show a scheduling mismatch.
        for event in past:
            self._table[type(event)](self, event)
        ctx._is_replaying = False

    def _episode(self, new: Sequence[HistoryEvent]) -> Decision:
        if self._reason == RECORDED:
            return self._settled()
        consumed = self._consumed
        index = 0
        if self._status is not None:
            # Ended while replaying: keep only the episode marker, so the end carries this episode's time.
            if new and type(new[0]) is OrchestratorStarted:
                consumed.append(new[0])
                on_orchestrator_started(self, new[0])
                index = 1
        else:
            for event in new:
                consumed.append(event)
                index += 1
                self._table[type(event)](self, event)
                if self._table is ENDED:
                    break
        return self._decide(new[index:])

    def _decide(self, unprocessed: Sequence[HistoryEvent]) -> Decision:
        ctx = self._ctx
        now = ctx._now_us
        history = self._consumed
        self._consumed = []
        actions: list[Action] = []
        for task_id, call in ctx._actions.items():
            actions.append(call.to_action(task_id))
            history.append(call.to_event(task_id, now))
        ctx._actions.clear()  # from here on they are history
        if self._status is None:
            return Decision(
                status=SUSPENDED if self._suspended else RUNNING,
                actions=tuple(actions),
                new_history=tuple(history),
                custom_status=ctx._custom_status,
            )
        history.append(self._final_event(now))
        self._reason = RECORDED
        carryover: tuple[HistoryEvent, ...] = ()
        if self._next_execution is not None and self._next_execution[2]:
            rest = [event for event in unprocessed if type(event) is EventRaised]
            carryover = (*ctx._unconsumed_events(), *rest)
        return self._settled(tuple(actions), tuple(history), carryover)

    def _settled(
        self,
        actions: tuple[Action, ...] = (),
        history: tuple[HistoryEvent, ...] = (),
        carryover: tuple[HistoryEvent, ...] = (),
    ) -> Decision:
        """The decision of an ended execution (later episodes repeat it with nothing new)."""
        status = self._status
        assert status is not None
        follow_up = None
        if self._next_execution is not None:
            new_input, execution_id, _ = self._next_execution
            follow_up = ContinueAsNew(execution_id=execution_id, input=new_input, carryover_events=carryover)
        return Decision(
            status=status,
            actions=actions,
            new_history=history,
            custom_status=self._ctx._custom_status,
            output=self._output,
            failure=self._failure,
            continue_as_new=follow_up,
        )

    def _final_event(self, now: int) -> HistoryEvent:
        if self._next_execution is not None:
            new_input, execution_id, _ = self._next_execution
            return ContinuedAsNew(timestamp=now, input=new_input, new_execution_id=execution_id)
        assert self._status is not None
        status, output, failure = self._status, self._output, self._failure
        return ExecutionCompleted(timestamp=now, status=status, result=output, failure=failure)

    # --- running the orchestrator code ----------------------------------------------------------------

    def _start(self, encoded_input: str | None) -> None:
        ctx = self._ctx
        try:
            result = self._definition.fn(ctx, self._definition.decode_input(encoded_input))
        except Exception as error:
            self._raised(error)
            return
        if isinstance(result, types.GeneratorType):
            self._gen = result
            self._awaited = _START
            self._advance()
        elif isinstance(result, types.CoroutineType):
            result.close()
            self._raised(
                OrchestrationStateError(
                    "an orchestrator must be a generator function (def with yield), not async def"
                )
            )
        else:
            self._returned(result)

    def _advance(self) -> None:
        """Run the orchestrator on while the task it waits for is complete."""
        gen = self._gen
        task = self._awaited
        assert gen is not None and task is not None
        ctx = self._ctx
        while task._is_complete:
            error = task._exception
            try:
                step = gen.send(task._result) if error is None else gen.throw(error)
            except StopIteration as stop:
                self._awaited = None
                self._returned(stop.value)
                return
            except Exception as failure:
                self._awaited = None
                self._raised(failure)
                return
            if ctx._continue_as_new is not None:  # takes effect at the next yield
                self._awaited = None
                self._continued()
                return
            if not isinstance(step, Task):
                self._awaited = None
                self._raised(not_a_task_error(step))
                return
            task = step
        self._awaited = task

    def _deliver(self, task: CompletableTask[Any], encoded: str | None) -> None:
        """Complete ``task`` with a result from history and run the code on if it was waiting for it."""
        if encoded is None:
            task._finish(None)
        else:
            try:
                value = payload.decode(encoded, task._hint)
            except PayloadError as error:
                task._fail(TaskFailedError(f"the result of {task._label} could not be read: {error}", error))
            else:
                task._finish(value)
        awaited = self._awaited
        if awaited is not None and awaited._is_complete:
            self._advance()

    def _deliver_failure(self, task: CompletableTask[Any], failure: FailureDetails) -> None:
        task._fail(TaskFailedError(f"{task._label} failed: {failure.message}", failure))
        awaited = self._awaited
        if awaited is not None and awaited._is_complete:
            self._advance()

    # --- how an execution ends ------------------------------------------------------------------------

    def _returned(self, value: Any) -> None:
        if self._ctx._continue_as_new is not None:
            self._continued()
            return
        try:
            output = payload.encode(value, what=f"the output of orchestration {self._definition.name!r}")
        except PayloadError as error:
            self._raised(error)
            return
        self._end(COMPLETED, BY_CODE, output=output)

    def _raised(self, error: BaseException) -> None:
        self._end(FAILED, BY_CODE, failure=FailureDetails.from_exception(error))

    def _continued(self) -> None:
        ctx = self._ctx
        assert ctx._continue_as_new is not None
        new_input, save_events = ctx._continue_as_new
        self._next_execution = (new_input, _next_execution_id(ctx), save_events)
        self._end(CONTINUED_AS_NEW, BY_CODE)

    def _nondeterminism(self, task_id: int, recorded: str, call: Call | None) -> None:
        if self._status is not None and self._reason != BY_CODE:
            return  # terminated, or an earlier mismatch already failed it
        did = f"called {call.describe()}" if call is not None else "made no call with this task id"
        message = f"task {task_id}: history recorded {recorded} but the code now {did}"
        self._stop(FAILED, failure=FailureDetails(message=message, error_type=_NONDETERMINISM))

    def _stop(self, status: str, *, output: str | None = None, failure: FailureDetails | None = None) -> None:
        """End the execution from outside the code: nothing the code asked for in this episode goes out."""
        self._ctx._actions.clear()
        self._next_execution = None
        self._end(status, STOPPED, output=output, failure=failure)

    def _end(
        self, status: str, reason: int, *, output: str | None = None, failure: FailureDetails | None = None
    ) -> None:
        self._status = status
        self._reason = reason
        self._output = output
        self._failure = failure
        self._table = ENDED


def _next_execution_id(ctx: OrchestrationContext) -> str:
    # Derived, not random: a re-run of the same episode (after a crash) must pick the same id.
    name = f"{ctx._instance_id}_{ctx._execution_id}_{ctx._now_us}_continue_as_new"
    return str(uuid.uuid5(UUID_NAMESPACE, name))


# --- entry points -------------------------------------------------------------------------------------------

_definitions: dict[Any, OrchestratorDefinition] = {}  # for plain functions; bounded like the callee cache
_DEFINITIONS_LIMIT = 4096


def as_definition(orchestrator: Orchestrator) -> OrchestratorDefinition:
    """The definition of a registered orchestrator, or one made (once) for a plain function."""
    if isinstance(orchestrator, OrchestratorDefinition):
        return orchestrator
    known = _definitions.get(orchestrator)
    if known is None:
        known = OrchestratorDefinition(
            function_name(orchestrator),
            orchestrator,
            input_type=payload.input_hint(orchestrator),
            output_type=payload.return_hint(orchestrator),
        )
        if len(_definitions) >= _DEFINITIONS_LIMIT:
            _definitions.clear()
        _definitions[orchestrator] = known
    return known


def execute(
    orchestrator: Orchestrator, past_events: Iterable[HistoryEvent], new_events: Sequence[HistoryEvent]
) -> Decision:
    """One episode of ``orchestrator``: replay ``past_events``, apply ``new_events``, decide."""
    return OrchestrationExecutor(orchestrator).execute(past_events, new_events)
