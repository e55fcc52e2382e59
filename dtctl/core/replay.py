"""Replay: rebuild an orchestration's state from its history, feed new events, decide what happens next.

An episode is ``execute(past, new)``: the orchestrator code is replayed against ``past`` (its history;
``is_replaying`` is true and every scheduling event must match the call the code makes now), then the
``new`` events are applied, and the result is one :class:`~dtctl.core.decision.Decision`.

:class:`OrchestrationExecutor` keeps the replayed state alive between episodes: after ``execute`` a
worker may call ``resume(next_new_events)`` and skip the replay (the warm path). The contract, held by
property tests: ``resume(new2)`` after ``execute(past, new1)`` decides exactly what a fresh
``execute(past + d1.new_history, new2)`` decides.

The engine is three modules, imported in one direction:

- :mod:`dtctl.core.execution`: :class:`~dtctl.core.execution.Execution` owns one execution's state
  (the generator, the awaited task, suspension, the events of the episode) and ends in one frozen
  :class:`~dtctl.core.execution.Ending` (status, an :class:`~dtctl.core.execution.EndReason`, output,
  failure, the :class:`~dtctl.core.execution.NextExecution` of a continue-as-new);
- :mod:`dtctl.core.handlers`: one function per history event class, registered with ``@handles``,
  changing the execution only through its methods and the context's engine interface;
- this module: the public entry points.

Adding a history event kind
---------------------------

1. ``dtctl/core/history.py``: a frozen dataclass (``@dataclass(frozen=True, slots=True, kw_only=True)``,
   subclass of ``HistoryEvent``, with a unique ``kind``), added to ``EVENT_TYPES``. Its JSON form and
   its storage in both hubs follow from that (hubs store encoded events); the client's views
   (``dtctl/client_views.py``: waiting-for, the history timeline) skip kinds they do not know.
2. ``dtctl/core/handlers.py``: one function ``_on_<kind>(ex: Execution, event: NewEvent) -> None``
   decorated with ``@handles(NewEvent, while_suspended=..., after_end=...)``. A message to the
   orchestrator is ``WhileSuspended.HOLD`` and ``AfterEnd.IGNORE``; a record of a call the code made is
   ``APPLY`` both ways. An event that completes work takes its task from ``ex.pending.tasks`` and calls
   ``ex.deliver`` / ``ex.deliver_failure``; one that records a call pops it from ``ex.pending.calls``
   and calls ``ex.mismatch`` when it differs. Importing the engine fails while a kind in
   ``EVENT_TYPES`` has no handler.
3. ``tests/core/``: one test that builds a history with ``dtctl.testing.HistoryBuilder`` (give the
   builder a method for the kind: ``tests/core/test_testing_builders.py`` checks that it builds every
   kind), replays it with ``execute`` or ``OrchestrationExecutor`` and asserts the decision.

An event that needs state no handler can reach yet (say, an entity's pending operations) adds that
state with a named method to ``Execution`` or to the context's engine interface, never a field written
from a handler. A new thing for the orchestrator to *ask* for is the other half: an action in
``dtctl/core/decision.py`` and its step in the hub's checkpoint plan, outside this recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dtctl.core import payload
from dtctl.core.app import OrchestratorDefinition, function_name
from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import Decision
from dtctl.core.execution import Execution
from dtctl.core.handlers import TABLES
from dtctl.core.history import HistoryEvent

__all__ = ["OrchestrationExecutor", "Orchestrator", "as_definition", "execute"]

Orchestrator = OrchestratorDefinition | Callable[..., Any]


class OrchestrationExecutor:
    """The replayed state of one orchestration execution, fed one episode at a time."""

    __slots__ = ("_default_version", "_definition", "_execution")

    def __init__(self, orchestrator: Orchestrator, *, default_version: str | None = None) -> None:
        self._definition = as_definition(orchestrator)
        # The version of sub-orchestrations started without one (the worker's VersioningOptions).
        self._default_version = default_version
        self._execution = self._new_execution()

    def _new_execution(self) -> Execution:
        execution = Execution(self._definition, TABLES)
        execution.context.default_version = self._default_version
        return execution

    @property
    def context(self) -> OrchestrationContext:
        return self._execution.context

    @property
    def status(self) -> str:
        """The runtime status after the last episode."""
        return self._execution.status

    @property
    def is_finished(self) -> bool:
        return self._execution.ending is not None

    def execute(self, past: Iterable[HistoryEvent], new: Sequence[HistoryEvent]) -> Decision:
        """One episode from scratch: replay ``past``, apply ``new``, decide."""
        self._execution = execution = self._new_execution()
        execution.replay(past)
        return execution.episode(new)

    def resume(self, new: Sequence[HistoryEvent]) -> Decision:
        """The next episode on the state the previous one left (no replay)."""
        return self._execution.episode(new)


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
