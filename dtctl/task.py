"""Drop-in for ``from durabletask import task``: the same names, backed by dtctl's replay engine.

Orchestrator and activity bodies written against the durabletask SDK run unchanged after replacing
``from durabletask import task`` with ``from dtctl import task``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from dtctl.core.app import function_name as get_name
from dtctl.core.context import ActivityContext, OrchestrationContext
from dtctl.core.critical_section import EntityLock, EntityOperationFailedException
from dtctl.core.entity import DurableEntity, EntityContext
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.core.task import (
    CancellableTask,
    CompletableTask,
    CompositeTask,
    RetryableTask,
    RetryPolicy,
    Task,
    TaskCancelledError,
    TaskFailedError,
    TimerTask,
    WhenAllTask,
    WhenAnyTask,
    when_all,
    when_any,
)
from dtctl.errors import NonDeterminismError, OrchestrationStateError

if TYPE_CHECKING:
    from dtctl.replay_logging import ReplaySafeLogger

__all__ = [
    "Activity",
    "ActivityContext",
    "CancellableTask",
    "CompletableTask",
    "CompositeTask",
    "DurableEntity",
    "Entity",
    "EntityContext",
    "EntityInstanceId",
    "EntityLock",
    "EntityOperationFailedException",
    "FailureDetails",
    "NonDeterminismError",
    "OrchestrationContext",
    "OrchestrationStateError",
    "Orchestrator",
    "ReplaySafeLogger",
    "RetryPolicy",
    "RetryableTask",
    "Task",
    "TaskCancelledError",
    "TaskFailedError",
    "TimerTask",
    "WhenAllTask",
    "WhenAnyTask",
    "get_name",
    "when_all",
    "when_any",
]

TInput = TypeVar("TInput")
TOutput = TypeVar("TOutput")

# The SDK's type aliases, for code that annotates with them.
Orchestrator = Callable[[OrchestrationContext, TInput], Generator[Task[Any], Any, TOutput] | TOutput]
Activity = Callable[[ActivityContext, TInput], TOutput]

Entity = Callable[[EntityContext, TInput], TOutput] | type[DurableEntity]


def __getattr__(name: str) -> Any:
    # The logger adapter loads logging (and threading): only when someone asks for it.
    if name == "ReplaySafeLogger":
        from dtctl.replay_logging import ReplaySafeLogger

        return ReplaySafeLogger
    raise AttributeError(f"module 'dtctl.task' has no attribute {name!r}")
