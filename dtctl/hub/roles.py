"""The roles of a task hub, one small protocol per kind of user; :class:`dtctl.hub.base.TaskHub` has them all.

- :class:`ClientOperations`: what :class:`~dtctl.client.TaskHubClient` does to instances.
- :class:`WorkerOperations`: leases, checkpoints, results and group commit (the worker loop).
- :class:`WorkerRegistry`: worker heartbeats (workers write them; ``dtctl workers`` reads them).
- :class:`HubAdmin`: schema creation, migration, version, backup (``dtctl init``, ``hub migrate``, …).
- :class:`HubInspector`: read-only questions about the hub as a whole (``dtctl top``, ``doctor``).
- :class:`EntityOperations`: the entity queue (workers) and entity reads and signals (clients).
- :class:`WakeUps`: hands out a :class:`~dtctl.hub.wakeup.WakeSource` for waiters.

Every hub plays every role, so callers never ask a hub what it can do. A feature one backend does not
have is still a method of its role, which says so with a :class:`~dtctl.errors.UsageError`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable

from dtctl.core.decision import Decision
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.history import HistoryEvent
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
    Finding,
    HubSnapshot,
    LeaseHolder,
    NameBacklog,
    StuckWork,
)
from dtctl.hub.records import (
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
from dtctl.hub.wakeup import WakeSource


class HubHandle(Protocol):
    """What every role has: where the hub is, its clock, and closing it."""

    url: str

    def now(self) -> int:
        """The hub's clock, epoch microseconds UTC."""
        ...

    def close(self) -> None: ...


class ClientOperations(HubHandle, Protocol):
    """Starting, signalling, reading and purging instances."""

    def create_instances(
        self, instances: Sequence[NewInstance], *, if_exists: IfExists = "fail"
    ) -> list[CreateOutcome]:
        """All or nothing: with ``fail``, one existing live id refuses the whole batch."""
        ...

    def raise_event(
        self,
        instance_id: str,
        name: str,
        data: str | None,
        *,
        force: bool = False,
        trace_context: str | None = None,
    ) -> None:
        """Queue an external event; ``trace_context``: the sender's W3C traceparent, stored with it."""
        ...

    def terminate(
        self, instance_id: str, reason: str | None, *, recursive: bool = True
    ) -> TerminateOutcome: ...

    def suspend(self, instance_id: str, reason: str | None) -> None: ...

    def resume(self, instance_id: str, reason: str | None) -> None: ...

    def get_instance(self, instance_id: str, *, include_payloads: bool = True) -> InstanceState | None: ...

    def list_instances(self, query: InstanceQuery) -> InstancePage: ...

    def get_history(
        self, instance_id: str, execution_id: str | None = None, *, after: int = -1, limit: int | None = None
    ) -> list[HistoryRecord]:
        """History of one execution (the current one by default), in sequence order: the events after
        sequence ``after``, at most ``limit`` of them (a page)."""
        ...

    def pending_messages(self, instance_id: str) -> list[InboxMessage]: ...

    def pending_activities(self, instance_id: str) -> list[ActivityWorkItem]: ...

    def purge(self, query: PurgeQuery) -> int:
        """Delete matching terminal instances and every row that belongs to them; returns the count."""
        ...

    def scale_metrics(self) -> ScaleMetrics: ...

    def rewind(self, instance_id: str, reason: str | None) -> list[str]:
        """Rewind a FAILED instance and its failed sub-orchestrations in one transaction (see
        :mod:`dtctl.hub.sql.repair`); returns the ids rewound, the instance first."""
        ...

    def import_instance(self, case: ImportedInstance) -> None:
        """Store an exported instance as it was (refusing an id that exists); nothing is queued for it."""
        ...


class WorkerOperations(HubHandle, Protocol):
    """Leasing work, committing its outcome, and what the worker loop needs to be fast and idle cheaply."""

    def lease_orchestrations(
        self,
        owner: str,
        names: Collection[str] | None,
        *,
        limit: int,
        lease_seconds: float,
        versions: VersionBounds = NO_BOUNDS,
    ) -> list[OrchestrationWorkItem]:
        """Lease instances with visible messages whose name is in ``names`` (None: any) and whose
        version key lies within ``versions`` (a worker that rejects the versions it does not match)."""
        ...

    def load_history(self, instance_id: str, execution_id: str) -> list[HistoryEvent]: ...

    def trace_record(self, instance_id: str) -> TraceRecord | None:
        """The trace context stored with an instance and its parent (read only by tracing workers)."""
        ...

    def checkpoint(self, batch: Sequence[tuple[OrchestrationWorkItem, Decision]]) -> list[CheckpointResult]:
        """One transaction for the whole batch; an item whose lease is lost writes nothing."""
        ...

    def abandon_orchestration(self, item: OrchestrationWorkItem) -> None: ...

    def lease_activities(
        self, owner: str, names: Collection[str] | None, *, limit: int, lease_seconds: float
    ) -> list[ActivityWorkItem]: ...

    def complete_activities(self, results: Sequence[ActivityResult]) -> list[bool]:
        """One transaction; False for a result whose lease was lost (nothing written for it)."""
        ...

    def abandon_activity(self, item: ActivityWorkItem) -> None: ...

    def renew_leases(
        self,
        orchestrations: Sequence[OrchestrationWorkItem],
        activities: Sequence[ActivityWorkItem],
        lease_seconds: float,
    ) -> tuple[list[str], list[int]]:
        """Extend leases still held; returns the instance ids and task ids whose leases were lost."""
        ...

    def release_leases(self, owner: str) -> int:
        """Give back every lease ``owner`` holds (a draining worker); returns how many."""
        ...

    def batch(self, *, durable: bool = True) -> AbstractContextManager[None]:
        """Make the worker operations called inside one transaction (group commit), where possible.

        ``checkpoint``, ``complete_activities``, ``lease_orchestrations`` and ``lease_activities``
        called inside join it, in call order (a lease sees what an earlier checkpoint in the block
        wrote); it commits when the block exits and rolls all of it back when the block raises. What
        those calls return is provisional until then: the caller acts on it (settles results, reuses
        checkpointed state) only after the block has exited. ``durable=False`` is for a block that only
        leases: its commit need not reach stable storage before returning (SQLite ``synchronous=NORMAL``,
        PostgreSQL ``synchronous_commit = off``). A lease lost to a power failure is a lease that expired;
        no lease is ever lost to a process crash. A backend that cannot span calls with one transaction
        may return a context that does nothing: each call then commits on its own, correct but slower.
        """
        ...

    def next_visible_at(
        self,
        orchestrations: Collection[str] | None,
        activities: Collection[str] | None,
        *,
        versions: VersionBounds = NO_BOUNDS,
    ) -> int | None:
        """When the lease calls with these names can next get work (hub clock, µs), or None: never.

        A cheap read that takes no write lock; names as in the lease calls (None: any name, empty:
        none of that kind). It counts what a lease call would take once visible: inbox messages of
        the current execution of live, unleased instances, and unleased activity tasks. A time at or
        before ``now()`` means such work is waiting now. Work under a live lease is not counted (it
        becomes leasable only if the lease expires, which an idle worker's poll notices).
        """
        ...


class EntityOperations(HubHandle, Protocol):
    """Durable entities: the third work-item queue, and what clients do to entities."""

    def lease_entities(
        self, owner: str, names: Collection[str] | None, *, limit: int, lease_seconds: float
    ) -> list[EntityWorkItem]:
        """Up to ``limit`` unleased entities (of these lower-cased names) with a ready message, each with
        its visible messages in FIFO order; joins an open :meth:`WorkerOperations.batch`."""
        ...

    def complete_entities(self, batches: Sequence[EntityBatch]) -> list[bool]:
        """One transaction for all of them (or the open batch's); False for a batch whose lease was
        lost (nothing written for it)."""
        ...

    def abandon_entity(self, item: EntityWorkItem) -> None: ...

    def renew_entity_leases(self, items: Sequence[EntityWorkItem], lease_seconds: float) -> list[str]:
        """Extend leases still held; returns the entity ids whose leases were lost."""
        ...

    def next_visible_entity(self, names: Collection[str] | None) -> int | None:
        """When :meth:`lease_entities` with these names can next find work (hub clock, µs), or None."""
        ...

    def signal_entity(
        self,
        entity_id: EntityInstanceId | str,
        operation: str,
        input: str | None,
        *,
        fire_at: int | None = None,
        trace_context: str | None = None,
    ) -> None:
        """Queue a one-way operation (visible at ``fire_at``, epoch µs, or now); creates the entity row.
        ``trace_context``: the signaller's W3C traceparent, stored with the message."""
        ...

    def get_entity(
        self, entity_id: EntityInstanceId | str, *, include_state: bool = True
    ) -> EntityState | None: ...

    def query_entities(self, query: EntityQuery) -> EntityPage: ...

    def entity_messages(self, entity_id: EntityInstanceId | str) -> list[EntityMessageInfo]:
        """The entity's inbox, FIFO (visible or not, parked or not)."""
        ...

    def entity_health(self) -> EntityHealth:
        """Counts for ``doctor`` and ``top``: a read, no locks."""
        ...

    def clean_entity_storage(
        self, *, remove_empty: bool = True, release_orphaned_locks: bool = True, dry_run: bool = False
    ) -> EntityCleanup:
        """Release locks whose holder is gone or finished, then remove empty entities; returns counts."""
        ...


class WorkerRegistry(HubHandle, Protocol):
    """The worker table: each worker's heartbeat, what it registered and its limits."""

    def heartbeat(self, info: WorkerInfo) -> None: ...

    def remove_worker(self, worker_id: str) -> None: ...

    def list_workers(self) -> list[WorkerInfo]: ...


class HubAdmin(HubHandle, Protocol):
    """The hub's schema and copies of it (run by its owner, not by workers)."""

    def create(self) -> None:
        """Create the schema (idempotent). Opening an existing hub never needs this."""
        ...

    def schema_version(self) -> int:
        """The schema version the store is at (0: no schema yet)."""
        ...

    def migrate(self) -> Path | None:
        """Bring an older hub to this dtctl's schema; returns the backup file written first, if any."""
        ...

    def backup(self, target: str | Path) -> Path:
        """Write a consistent copy of the hub to ``target`` (which must not exist); returns its path.

        Raises :class:`~dtctl.errors.UsageError` where the backend's own tools make the copy.
        """
        ...


@runtime_checkable
class HubInspector(Protocol):
    """Read-only questions about a hub as a whole. Cheap enough to ask every second while workers run:
    bounded windows, index range scans, no locks held between calls."""

    def hub_snapshot(self, window_seconds: float = 60.0) -> HubSnapshot:
        """Queues, instances, the work of the last ``window_seconds`` (≤ the log retention), workers,
        leases and unleased backlog by name, all read in one consistent read."""
        ...

    def backlog_by_name(self) -> list[NameBacklog]:
        """Ready, unleased work grouped by orchestration / activity name, largest first."""
        ...

    def lease_holders(self) -> list[LeaseHolder]:
        """Unexpired leases by owner."""
        ...

    def stuck_work(
        self,
        *,
        max_dequeue: int = DEFAULT_MAX_DEQUEUE,
        history_threshold: int = LARGE_HISTORY_EVENTS,
        limit: int = 20,
    ) -> StuckWork:
        """Expired leases, poison candidates (dequeue count ≥ ``max_dequeue``), live instances whose
        current history has ≥ ``history_threshold`` events."""
        ...

    def storage_findings(self, *, full: bool = False) -> list[Finding]:
        """Checks of the store itself (schema version, durability settings, integrity — the full check
        with ``full`` —, engine version, file system, permissions). Every finding has area ``hub``."""
        ...


class WakeUps(Protocol):
    """Hands waiters (workers, ``wait_for_completion``, ``top``, ``--follow``) a source of wake-ups."""

    def wake_source(self) -> WakeSource:
        """A new source, set when work may have become visible; the caller closes it."""
        ...

    def watch_path(self) -> Path | None:
        """A file whose changes hint that new work may be visible (None when the hub has none)."""
        ...
