"""dtctl: the Durable Task Framework for Python, one command-line tool with an embedded engine.

The authoring API lives here (``dtctl.App``, ``dtctl.OrchestrationContext``, ``dtctl.when_all`` ...);
``from dtctl import task`` and ``from dtctl import entities`` are drop-ins for the durabletask SDK's
``task`` and ``entities`` modules. Importing dtctl stays
cheap: the client (and with it the hub and its database driver) loads only when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dtctl.core.app import App
from dtctl.core.context import ActivityContext, OrchestrationContext
from dtctl.core.critical_section import EntityLock, EntityOperationFailedException
from dtctl.core.entity import DurableEntity, EntityContext
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    PENDING,
    RUNNING,
    SUSPENDED,
    TERMINATED,
)
from dtctl.core.payload import DataConverter, JsonDataConverter
from dtctl.core.task import (
    CancellableTask,
    CompletableTask,
    RetryPolicy,
    Task,
    TaskCancelledError,
    TaskFailedError,
    when_all,
    when_any,
)
from dtctl.core.versioning import VersionFailureStrategy, VersioningOptions, VersionMatchStrategy
from dtctl.errors import DtctlError, NonDeterminismError, OrchestrationStateError, PayloadError

if TYPE_CHECKING:
    from dtctl.client import TaskHubClient

__version__ = "0.1.0.dev0"

__all__ = [
    "COMPLETED",
    "CONTINUED_AS_NEW",
    "FAILED",
    "PENDING",
    "RUNNING",
    "SUSPENDED",
    "TERMINATED",
    "ActivityContext",
    "App",
    "CancellableTask",
    "CompletableTask",
    "DataConverter",
    "DtctlError",
    "DurableEntity",
    "EntityContext",
    "EntityInstanceId",
    "EntityLock",
    "EntityOperationFailedException",
    "FailureDetails",
    "JsonDataConverter",
    "NonDeterminismError",
    "OrchestrationContext",
    "OrchestrationStateError",
    "PayloadError",
    "RetryPolicy",
    "Task",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskHubClient",
    "VersionFailureStrategy",
    "VersionMatchStrategy",
    "VersioningOptions",
    "__version__",
    "when_all",
    "when_any",
]


def __getattr__(name: str) -> Any:
    # The client pulls in the hub (sqlite3 and friends): load it only when someone asks for it.
    if name == "TaskHubClient":
        from dtctl.client import TaskHubClient

        return TaskHubClient
    raise AttributeError(f"module 'dtctl' has no attribute {name!r}")
