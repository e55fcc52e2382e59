"""The TaskHub interface every storage backend implements, and the records it exchanges.

A hub is the only code that talks to a database. It owns time for leases and visibility (the hub's
clock: the local clock for SQLite, the server clock for PostgreSQL), fences every commit with the lease
token it handed out, and translates driver errors into :mod:`dtctl.errors` types.

Times are integers: microseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from dtctl.core.decision import Decision
from dtctl.core.failure import FailureDetails
from dtctl.core.history import HistoryEvent, TaskCompleted, TaskFailed

IfExists = Literal["fail", "skip", "replace"]

DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MAX_DEQUEUE = 5


# --- what clients send ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NewInstance:
    instance_id: str
    name: str
    input: str | None = None  # encoded JSON
    start_at: int | None = None  # not visible to workers before this time
    parent_instance_id: str | None = None
    parent_task_id: int | None = None


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    instance_id: str
    created: bool  # False: skipped because it exists (if_exists="skip")


@dataclass(frozen=True, slots=True)
class TerminateOutcome:
    instance_id: str
    terminated: bool  # False: it was already terminal; ``status`` says which
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceQuery:
    statuses: tuple[str, ...] = ()
    name: str | None = None
    prefix: str | None = None
    created_after: int | None = None
    created_before: int | None = None
    limit: int = 100
    cursor: str | None = None  # opaque; from the previous page's ``next_cursor``
    include_payloads: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeQuery:
    instance_ids: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()  # only terminal statuses are ever purged
    completed_before: int | None = None
    batch_size: int = 500


# --- what the hub returns -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceState:
    instance_id: str
    execution_id: str
    name: str
    status: str
    created_at: int
    updated_at: int
    completed_at: int | None = None
    scheduled_start: int | None = None
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    failure: FailureDetails | None = None
    parent_instance_id: str | None = None
    parent_task_id: int | None = None
    lease_owner: str | None = None
    lease_expires: int | None = None
    history_length: int = 0
    previous_execution_id: str | None = None  # kept after continue-as-new; its history is still stored


@dataclass(frozen=True, slots=True)
class InstancePage:
    instances: list[InstanceState]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    execution_id: str
    sequence: int
    event: HistoryEvent


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """A row of the orchestration inbox (``new_events``)."""

    id: int
    event: HistoryEvent
    dequeue_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrchestrationWorkItem:
    """A leased instance with the inbox messages visible when it was leased.

    ``history_length`` is the number of history rows of ``execution_id``: a worker that cached the
    instance's replay state at that length may resume it warm; otherwise it loads the history.
    ``leased_at`` is the hub's clock at lease time (the episode's ``orchestrator_started`` time).
    """

    instance_id: str
    execution_id: str
    name: str
    status: str
    lease_token: str
    lease_expires: int
    leased_at: int
    history_length: int
    messages: tuple[InboxMessage, ...]

    @property
    def dequeue_count(self) -> int:
        return max((m.dequeue_count for m in self.messages), default=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityWorkItem:
    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None
    lease_token: str
    lease_expires: int
    dequeue_count: int
    lease_owner: str | None = None
    visible_at: int | None = None


@dataclass(frozen=True, slots=True)
class ActivityResult:
    item: ActivityWorkItem
    event: TaskCompleted | TaskFailed


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    """Per item of a group commit: committed, or refused because the lease was lost."""

    instance_id: str
    committed: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleMetrics:
    """The inputs of the scale recommendation (DESIGN §8), plus a breakdown for people."""

    live_orchestrations: int  # instances with an inbox message visible now or leased now, each once
    live_activities: int  # activity queue rows visible now, leased or not
    leased_orchestrations: int = 0  # instances leased now
    visible_inbox_instances: int = 0  # live instances with at least one inbox message visible now
    future_timers: int = 0  # timer_fired messages not due yet
    scheduled_activities: int = 0  # every row of the activity queue, visible or not


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    worker_id: str
    host: str
    pid: int
    started_at: int
    heartbeat_at: int = 0
    orchestrations: tuple[str, ...] = ()
    activities: tuple[str, ...] = ()
    max_orchestrations: int = 0
    max_activities: int = 0
    inflight_orchestrations: int = 0
    inflight_activities: int = 0
    extra: dict[str, object] = field(default_factory=dict)


# --- the interface -------------------------------------------------------------------------------


@runtime_checkable
class TaskHub(Protocol):
    """Storage for one task hub. Implementations are used from one thread at a time."""

    url: str

    # lifecycle
    def create(self) -> None:
        """Create the schema (idempotent). Opening an existing hub never needs this."""

    def close(self) -> None: ...

    def now(self) -> int:
        """The hub's clock, epoch microseconds UTC."""
        ...

    def watch_path(self) -> Path | None:
        """A file whose changes hint that new work may be visible (None when the hub has none)."""
        ...

    # client operations
    def create_instances(
        self, instances: Sequence[NewInstance], *, if_exists: IfExists = "fail"
    ) -> list[CreateOutcome]:
        """All or nothing: with ``fail``, one existing live id refuses the whole batch."""
        ...

    def raise_event(self, instance_id: str, name: str, data: str | None, *, force: bool = False) -> None: ...

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

    # worker operations
    def lease_orchestrations(
        self, owner: str, names: Collection[str] | None, *, limit: int, lease_seconds: float
    ) -> list[OrchestrationWorkItem]: ...

    def load_history(self, instance_id: str, execution_id: str) -> list[HistoryEvent]: ...

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

    # group commit and wake-up times (what the worker loop needs to be fast and idle cheaply)
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
        self, orchestrations: Collection[str] | None, activities: Collection[str] | None
    ) -> int | None:
        """When the lease calls with these names can next get work (hub clock, µs), or None: never.

        A cheap read that takes no write lock; names as in the lease calls (None: any name, empty:
        none of that kind). It counts what a lease call would take once visible: inbox messages of
        the current execution of live, unleased instances, and unleased activity tasks. A time at or
        before ``now()`` means such work is waiting now. Work under a live lease is not counted (it
        becomes leasable only if the lease expires, which an idle worker's poll notices).
        """
        ...

    # workers
    def heartbeat(self, info: WorkerInfo) -> None: ...

    def remove_worker(self, worker_id: str) -> None: ...

    def list_workers(self) -> list[WorkerInfo]: ...


# --- inspection: read-only questions operators ask (dtctl top, workers, doctor) -----------------------

WorkKind = Literal["orchestration", "activity"]
Severity = Literal["ok", "warning", "problem"]
FindingArea = Literal["hub", "work"]

# A live instance whose current execution has at least this many history events replays slowly.
LARGE_HISTORY_EVENTS = 10_000
# The hub keeps its work log (finished work items with their timings) this long; windows are shorter.
WORK_LOG_RETENTION_SECONDS = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingItem:
    """A work item that is ready and that nobody holds: an inbox message or an activity task."""

    kind: WorkKind
    instance_id: str
    name: str  # the orchestration's name (inbox) or the activity's name (task)
    visible_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueDepth:
    """One queue now: the orchestration inbox (messages) or the activity queue (task rows)."""

    visible: int  # ready now, leased or not
    leased: int  # of ``visible``: held by a lease now (inbox: messages of instances leased now)
    later: int  # becomes visible later: timers, scheduled starts, retry back-off
    oldest: WaitingItem | None = None  # the oldest ready item that nobody holds


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkWindow:
    """Work items of one kind that finished in the window, from the hub's work log.

    An orchestration work item is one episode (lease -> checkpoint); an activity work item is one
    execution (lease -> result committed). Latencies are microseconds over the most recent items of the
    window (at most a few thousand): schedule-to-start is visible -> leased, start-to-complete is
    leased -> committed. ``None`` when nothing finished.
    """

    kind: WorkKind
    finished: int
    failed: int  # activity: task_failed; orchestration: episodes that failed the instance
    samples: int = 0
    schedule_to_start_p50: int | None = None
    schedule_to_start_p95: int | None = None
    start_to_complete_p50: int | None = None
    start_to_complete_p95: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceCounts:
    """Live instances now, by status, and instances that finished in the window, by status."""

    pending: int = 0
    running: int = 0
    suspended: int = 0
    completed: int = 0  # in the window
    failed: int = 0  # in the window
    terminated: int = 0  # in the window


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedCount:
    kind: WorkKind
    name: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NameBacklog:
    """Ready work of one name that nobody holds: instances with a visible message, or task rows."""

    kind: WorkKind
    name: str
    count: int
    oldest_visible_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseHolder:
    """Unexpired leases one owner (a worker id, ``host:pid:rand``) holds now."""

    owner: str
    orchestrations: int
    activities: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSnapshot:
    """Everything ``dtctl top`` shows, read at one moment (``at``, the hub's clock)."""

    at: int
    window_seconds: float
    scale: ScaleMetrics
    inbox: QueueDepth
    activity_queue: QueueDepth
    instances: InstanceCounts
    orchestration_work: WorkWindow
    activity_work: WorkWindow
    failures: tuple[NamedCount, ...]  # failed work items in the window, by name, most first
    workers: tuple[WorkerInfo, ...]
    leases: tuple[LeaseHolder, ...]
    backlog: tuple[NameBacklog, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiredLease:
    """A lease whose time ran out and that nobody has taken over yet (its owner died or stalled)."""

    kind: WorkKind
    instance_id: str
    name: str
    owner: str | None
    expired_at: int
    task_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PoisonCandidate:
    """A work item leased ``dequeue_count`` times: at the limit, its next lease fails it."""

    kind: WorkKind
    instance_id: str
    name: str
    dequeue_count: int
    task_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LargeHistory:
    instance_id: str
    name: str
    status: str
    history_length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StuckWork:
    """Work that is not moving, found at ``at``; each list holds at most ``limit`` of its ``*_count``."""

    at: int
    expired_leases: tuple[ExpiredLease, ...] = ()
    expired_lease_count: int = 0
    poison: tuple[PoisonCandidate, ...] = ()
    poison_count: int = 0
    large_histories: tuple[LargeHistory, ...] = ()
    large_history_count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """The outcome of one health check. A problem in ``hub`` means the store itself is at risk."""

    check: str  # a short stable id: "integrity", "journal-mode", "expired-leases", …
    severity: Severity
    message: str
    hint: str | None = None
    area: FindingArea = "hub"


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
