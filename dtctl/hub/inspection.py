"""The records of operators' questions about a hub as a whole (``dtctl top``, ``workers``, ``doctor``).

The role that answers them is :class:`dtctl.hub.roles.HubInspector`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dtctl.hub.records import ScaleMetrics, WorkerInfo

WorkKind = Literal["orchestration", "activity", "entity"]
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
    # committed entity batches (one work log row each; schedule-to-start counts from the lease)
    entity_work: WorkWindow
    failures: tuple[NamedCount, ...]  # failed work items in the window, by name, most first
    workers: tuple[WorkerInfo, ...]
    leases: tuple[LeaseHolder, ...]
    backlog: tuple[NameBacklog, ...]
    # SQLite: the process that holds the write lock while stopped (SIGSTOP, a debugger), described;
    # every writer waits for it. None when nobody stopped holds it (and always on PostgreSQL).
    write_lock: str | None = None


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
