"""The TaskHub interface every storage backend implements, and (re-exported) the records it exchanges.

A hub is the only code that talks to a database. It owns time for leases and visibility (the hub's
clock: the local clock for SQLite, the server clock for PostgreSQL), fences every commit with the lease
token it handed out, and translates driver errors into :mod:`dtctl.errors` types.

:class:`TaskHub` is the union of the roles in :mod:`dtctl.hub.roles`; a caller that needs one role
should ask for that protocol. The records live in :mod:`dtctl.hub.records` and
:mod:`dtctl.hub.inspection`; they are re-exported here so ``from dtctl.hub.base import X`` keeps working.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from dtctl.hub.entity_records import (
    EntityBatch,
    EntityCleanup,
    EntityHealth,
    EntityMessageInfo,
    EntityPage,
    EntityQuery,
    EntityState,
    EntityWorkItem,
)
from dtctl.hub.inspection import (
    LARGE_HISTORY_EVENTS,
    WORK_LOG_RETENTION_SECONDS,
    ExpiredLease,
    Finding,
    FindingArea,
    HubSnapshot,
    InstanceCounts,
    LargeHistory,
    LeaseHolder,
    NameBacklog,
    NamedCount,
    PoisonCandidate,
    QueueDepth,
    Severity,
    StuckWork,
    WaitingItem,
    WorkKind,
    WorkWindow,
)
from dtctl.hub.records import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_DEQUEUE,
    NO_BOUNDS,
    ActivityResult,
    ActivityWorkItem,
    CheckpointResult,
    CreateOutcome,
    HistoryRecord,
    IfExists,
    ImportedInstance,
    InboxMessage,
    InstancePage,
    InstanceQuery,
    InstanceState,
    NewInstance,
    OrchestrationWorkItem,
    PurgeQuery,
    ScaleMetrics,
    TerminateOutcome,
    TraceRecord,
    VersionBounds,
    WorkerInfo,
)
from dtctl.hub.roles import (
    ClientOperations,
    EntityOperations,
    HubAdmin,
    HubHandle,
    HubInspector,
    WakeUps,
    WorkerOperations,
    WorkerRegistry,
)
from dtctl.hub.wakeup import WakeSource

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_DEQUEUE",
    "LARGE_HISTORY_EVENTS",
    "NO_BOUNDS",
    "WORK_LOG_RETENTION_SECONDS",
    "ActivityResult",
    "ActivityWorkItem",
    "CheckpointResult",
    "ClientOperations",
    "CreateOutcome",
    "EntityBatch",
    "EntityCleanup",
    "EntityHealth",
    "EntityMessageInfo",
    "EntityOperations",
    "EntityPage",
    "EntityQuery",
    "EntityState",
    "EntityWorkItem",
    "ExpiredLease",
    "Finding",
    "FindingArea",
    "HistoryRecord",
    "HubAdmin",
    "HubHandle",
    "HubInspector",
    "HubSnapshot",
    "IfExists",
    "ImportedInstance",
    "InboxMessage",
    "InstanceCounts",
    "InstancePage",
    "InstanceQuery",
    "InstanceState",
    "LargeHistory",
    "LeaseHolder",
    "NameBacklog",
    "NamedCount",
    "NewInstance",
    "OrchestrationWorkItem",
    "PoisonCandidate",
    "PurgeQuery",
    "QueueDepth",
    "ScaleMetrics",
    "Severity",
    "StuckWork",
    "TaskHub",
    "TerminateOutcome",
    "TraceRecord",
    "VersionBounds",
    "WaitingItem",
    "WakeSource",
    "WakeUps",
    "WorkKind",
    "WorkWindow",
    "WorkerInfo",
    "WorkerOperations",
    "WorkerRegistry",
]


@runtime_checkable
class TaskHub(
    ClientOperations,
    WorkerOperations,
    EntityOperations,
    WorkerRegistry,
    HubAdmin,
    HubInspector,
    WakeUps,
    Protocol,
):
    """Storage for one task hub: every role. Implementations are used from one thread at a time."""
