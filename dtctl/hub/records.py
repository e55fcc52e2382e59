"""The records a task hub exchanges with its clients and workers: what they send, what it returns.

Times are integers: microseconds since the Unix epoch, UTC. The records of operators' questions are in
:mod:`dtctl.hub.inspection`; the roles that use them in :mod:`dtctl.hub.roles`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from dtctl.core.failure import FailureDetails
from dtctl.core.history import HistoryEvent, TaskCompleted, TaskFailed

IfExists = Literal["fail", "skip", "replace"]

# The range of version keys a worker leases (dtctl.core.versioning.lease_bounds); None: open on that side.
VersionBounds = tuple[str | None, str | None]
NO_BOUNDS: VersionBounds = (None, None)

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
    version: str | None = None  # the orchestration version (ctx.version)
    tags: dict[str, str] | None = None
    trace_context: str | None = None  # the W3C traceparent of the caller (dtctl.observe.tracecontext)


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
    version: str | None = None  # exactly this version ("" : instances without one)
    tags: Mapping[str, str] | tuple[tuple[str, str], ...] = ()  # every one of these (ANDed)

    def tag_pairs(self) -> list[tuple[str, str]]:
        """The tag filter as (name, value) pairs, sorted."""
        items = self.tags.items() if isinstance(self.tags, Mapping) else self.tags
        return sorted((str(k), str(v)) for k, v in items)


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeQuery:
    instance_ids: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()  # only terminal statuses are ever purged
    completed_before: int | None = None
    created_before: int | None = None
    created_after: int | None = None
    recursive: bool = True  # a purged instance's finished sub-orchestrations go with it
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
    version: str | None = None  # the orchestration version of the current execution
    tags: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ImportedInstance:
    """An instance read from an exported case file: its row and each stored execution's history,
    oldest execution first (the last one is ``state.execution_id``)."""

    state: InstanceState
    executions: tuple[tuple[str, tuple[HistoryEvent, ...]], ...]


@dataclass(frozen=True, slots=True)
class InstancePage:
    instances: list[InstanceState]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceRecord:
    """What a tracing worker needs to place an instance's spans in its caller's trace."""

    instance_id: str
    execution_id: str
    created_at: int
    trace_context: str | None = None  # the caller's traceparent, stored at start
    parent_instance_id: str | None = None  # a sub-orchestration's parent: its trace is the parent's
    parent_execution_id: str | None = None


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
    trace_context: str | None = None  # the sender's traceparent (a client's raise_event), if it had one


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
    version: str | None = None  # the instance's orchestration version (the worker checks it)

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
    """The inputs of the scale recommendation, plus a breakdown for people."""

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
