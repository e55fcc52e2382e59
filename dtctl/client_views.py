"""Views of an instance derived from the hub's data: what it waits for, and where its time went.

Pure functions over history records, inbox messages and queue rows (no database, no clock), so they
are easy to test with built histories. :class:`dtctl.client.TaskHubClient` gathers the data and calls
them (``waiting_for``, ``timeline``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    PENDING,
    TERMINAL_STATUSES,
    ContinuedAsNew,
    EntityLockGranted,
    EntityLockRequested,
    EntityOperationCalled,
    EntityOperationCompleted,
    EntityOperationFailed,
    EventRaised,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    OrchestratorStarted,
    SubOrchestrationCompleted,
    SubOrchestrationCreated,
    SubOrchestrationFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCancelled,
    TimerCreated,
    TimerFired,
)
from dtctl.core.versioning import (
    VersionFailureStrategy,
    VersioningOptions,
    parse_failure,
    parse_match,
    version_failure,
)
from dtctl.hub.base import ActivityWorkItem, HistoryRecord, InboxMessage, InstanceState, WorkerInfo


@dataclass(frozen=True, slots=True)
class Unclaimed:
    """Names that no live worker has registered (so nothing will run them until one does)."""

    orchestrations: tuple[str, ...] = ()
    activities: tuple[str, ...] = ()
    live_workers: int = 0
    # The instance's orchestrator is registered, but every live worker that has it rejects its version.
    version_refused: bool = False
    version: str | None = None

    def __bool__(self) -> bool:
        return bool(self.orchestrations or self.activities or self.version_refused)


def worker_versioning(worker: WorkerInfo) -> VersioningOptions | None:
    """The versioning a worker reported in its heartbeat (None: it runs every version)."""
    extra = worker.extra
    match = extra.get("version_match")
    if not isinstance(match, str):
        return None
    failure = extra.get("version_failure")
    version = extra.get("version")
    return VersioningOptions(
        version=version if isinstance(version, str) else None,
        match_strategy=parse_match(match),
        failure_strategy=parse_failure(failure) if isinstance(failure, str) else None,
    )


def takes_version(worker: WorkerInfo, version: str | None) -> bool:
    """Whether the worker leases an instance at ``version`` (to run it, or to fail it as mismatched)."""
    options = worker_versioning(worker)
    if options is None or options.failure is VersionFailureStrategy.FAIL:
        return True
    return version_failure(options, version) is None


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingActivity:
    """An activity the instance scheduled whose result it has not processed yet.

    ``state``: ``queued`` (waiting for a worker; not before ``visible_at``), ``running`` (leased by
    ``worker`` until ``lease_expires``), ``result_pending`` (finished; the result waits in the inbox
    for the orchestrator's next episode) or ``unknown`` (neither queued nor answered).
    """

    task_id: int
    name: str
    scheduled_at: int | None
    state: str
    worker: str | None = None
    lease_expires: int | None = None
    visible_at: int | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingTimer:
    """A durable timer not processed yet: ``waiting`` until ``fire_at``, then ``due``."""

    task_id: int
    fire_at: int
    created_at: int | None
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingSubOrchestration:
    """A child instance whose result the parent has not processed; ``status`` is the child's."""

    task_id: int
    name: str
    instance_id: str
    created_at: int | None
    status: str | None
    state: str  # running | result_pending


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingEntityRequest:
    """An entity call whose response, or a critical section whose locks, the instance waits for.

    ``held_by``: for a lock request, who holds each entity's lock now (None: free or unknown).
    """

    task_id: int
    kind: str  # call | lock
    entity_ids: tuple[str, ...]
    operation: str | None
    created_at: int | None
    state: str  # waiting | result_pending
    held_by: tuple[str | None, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxEvent:
    """A message in the instance's inbox: something its next episode will process."""

    kind: str
    name: str | None
    task_id: int | None
    due_at: int
    visible: bool
    dequeue_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingFor:
    """What a live instance waits for now (:meth:`TaskHubClient.waiting_for`).

    External events are awaited only in the orchestrator's code and never recorded, so they cannot be
    listed; ``events_received`` and ``events_buffered`` say which have arrived.
    """

    instance_id: str
    status: str
    now: int
    start_at: int | None = None
    episode_worker: str | None = None
    episode_lease_expires: int | None = None
    activities: tuple[PendingActivity, ...] = ()
    timers: tuple[PendingTimer, ...] = ()
    sub_orchestrations: tuple[PendingSubOrchestration, ...] = ()
    entity_requests: tuple[PendingEntityRequest, ...] = ()
    new_events: tuple[InboxEvent, ...] = ()
    events_received: tuple[str, ...] = ()
    events_buffered: tuple[str, ...] = ()
    unclaimed: Unclaimed = field(default_factory=Unclaimed)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """One bar of a timeline: from scheduled (``start``) to completed (``end``; None while open).

    ``kind``: orchestration, queued, activity, timer, sub_orchestration, suspended, event (a point).
    ``outcome``: completed, failed, fired, received, pending (still open), unfinished (the execution
    ended first), or the orchestration's final status.
    """

    kind: str
    name: str
    start: int
    end: int | None
    outcome: str
    task_id: int | None = None
    target: str | None = None
    failure: FailureDetails | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    instance_id: str
    execution_id: str
    name: str
    status: str
    start: int
    end: int | None
    now: int
    spans: tuple[Span, ...]


# --- deriving views from history (pure functions: easy to test with built histories) --------------------

_COMPLETIONS: dict[type[HistoryEvent], str] = {
    TaskCompleted: "completed",
    TaskFailed: "failed",
    TimerFired: "fired",
    TimerCancelled: "cancelled",  # the timer will never fire: it no longer keeps the instance waiting
    SubOrchestrationCompleted: "completed",
    SubOrchestrationFailed: "failed",
    EntityOperationCompleted: "completed",
    EntityOperationFailed: "failed",
    EntityLockGranted: "granted",
}
_SCHEDULING = (
    TaskScheduled,
    TimerCreated,
    SubOrchestrationCreated,
    EntityOperationCalled,
    EntityLockRequested,
)


def _open_tasks(records: Sequence[HistoryRecord]) -> dict[int, HistoryEvent]:
    """Scheduling events (by task id) that history holds no completion for, in order."""
    open_: dict[int, HistoryEvent] = {}
    for record in records:
        event = record.event
        if isinstance(event, _SCHEDULING):
            open_[event.task_id] = event
        elif type(event) in _COMPLETIONS:
            open_.pop(getattr(event, "task_id", -1), None)
    return open_


def _entity_request(
    event: EntityOperationCalled | EntityLockRequested, answered: bool
) -> PendingEntityRequest:
    state = "result_pending" if answered else "waiting"
    if isinstance(event, EntityOperationCalled):
        return PendingEntityRequest(
            task_id=event.task_id,
            kind="call",
            entity_ids=(event.entity_id,),
            operation=event.operation,
            created_at=event.timestamp or None,
            state=state,
        )
    return PendingEntityRequest(
        task_id=event.task_id,
        kind="lock",
        entity_ids=event.entity_ids,
        operation=None,
        created_at=event.timestamp or None,
        state=state,
    )


def derive_waiting_for(
    state: InstanceState,
    records: Sequence[HistoryRecord],
    inbox: Sequence[InboxMessage],
    queue: Sequence[ActivityWorkItem],
    now: int,
) -> WaitingFor:
    """The hub-only part of :meth:`TaskHubClient.waiting_for` (children's status and workers aside)."""
    answered = {
        m.event.task_ref: m.event
        for m in inbox
        if type(m.event) in _COMPLETIONS and m.event.task_ref is not None
    }
    queued = {t.task_id: t for t in queue}
    activities: list[PendingActivity] = []
    timers: list[PendingTimer] = []
    children: list[PendingSubOrchestration] = []
    requests: list[PendingEntityRequest] = []
    for task_id, event in _open_tasks(records).items():
        if isinstance(event, EntityOperationCalled | EntityLockRequested):
            requests.append(_entity_request(event, task_id in answered))
        if isinstance(event, TaskScheduled):
            activities.append(_pending_activity(event, queued.get(task_id), task_id in answered, now))
        elif isinstance(event, TimerCreated):
            due = task_id in answered and event.fire_at <= now
            timers.append(
                PendingTimer(
                    task_id=task_id,
                    fire_at=event.fire_at,
                    created_at=event.timestamp or None,
                    state="due" if due else "waiting",
                )
            )
        elif isinstance(event, SubOrchestrationCreated):
            children.append(
                PendingSubOrchestration(
                    task_id=task_id,
                    name=event.name,
                    instance_id=event.instance_id,
                    created_at=event.timestamp or None,
                    status=None,
                    state="result_pending" if task_id in answered else "running",
                )
            )
    new_events = tuple(_inbox_event(m, now) for m in inbox)
    leased = state.lease_owner is not None and (state.lease_expires or 0) > now
    return WaitingFor(
        instance_id=state.instance_id,
        status=state.status,
        now=now,
        start_at=state.scheduled_start
        if state.status == PENDING and (state.scheduled_start or 0) > now
        else None,
        episode_worker=state.lease_owner if leased else None,
        episode_lease_expires=state.lease_expires if leased else None,
        activities=tuple(activities),
        timers=tuple(timers),
        sub_orchestrations=tuple(children),
        entity_requests=tuple(requests),
        new_events=new_events,
        events_received=tuple(r.event.name for r in records if isinstance(r.event, EventRaised)),
        events_buffered=tuple(m.event.name for m in inbox if isinstance(m.event, EventRaised)),
    )


def _pending_activity(
    event: TaskScheduled, row: ActivityWorkItem | None, answered: bool, now: int
) -> PendingActivity:
    common: dict[str, Any] = {
        "task_id": event.task_id,
        "name": event.name,
        "scheduled_at": event.timestamp or None,
    }
    if row is None:
        return PendingActivity(**common, state="result_pending" if answered else "unknown")
    running = row.lease_owner is not None and row.lease_expires > now
    return PendingActivity(
        **common,
        state="running" if running else "queued",
        worker=row.lease_owner if running else None,
        lease_expires=row.lease_expires if running else None,
        visible_at=row.visible_at,
        attempts=row.dequeue_count,
    )


def _inbox_event(message: InboxMessage, now: int) -> InboxEvent:
    event = message.event
    due = event.fire_at if isinstance(event, TimerFired) else event.timestamp
    return InboxEvent(
        kind=event.kind,
        name=getattr(event, "name", None),
        task_id=event.task_ref,
        due_at=due,
        visible=due <= now,
        dequeue_count=message.dequeue_count,
    )


def with_child_status(child: PendingSubOrchestration, found: InstanceState | None) -> PendingSubOrchestration:
    return PendingSubOrchestration(
        task_id=child.task_id,
        name=child.name,
        instance_id=child.instance_id,
        created_at=child.created_at,
        status=None if found is None else found.status,
        state=child.state,
    )


def replace_waiting(found: WaitingFor, **changes: Any) -> WaitingFor:
    return replace(found, **changes)


def build_timeline(state: InstanceState, records: Sequence[HistoryRecord], now: int) -> Timeline:
    """Bars from history: the orchestration, the wait for its first episode, each activity, timer and
    sub-orchestration from scheduled to completed, suspensions, and external events as points."""
    events = [r.event for r in records]
    started = next((e for e in events if isinstance(e, ExecutionStarted)), None)
    start = started.timestamp if started else (events[0].timestamp if events else state.created_at)
    final = next((e for e in reversed(events) if isinstance(e, (ExecutionCompleted, ContinuedAsNew))), None)
    end = final.timestamp if final else None
    status = (
        final.status
        if isinstance(final, ExecutionCompleted)
        else "CONTINUED_AS_NEW"
        if final
        else state.status
    )
    execution_id = records[0].execution_id if records else state.execution_id
    if end is None and state.status in TERMINAL_STATUSES and execution_id == state.execution_id:
        # Ended without an episode (a pending instance terminated at once): the instance row says when.
        end = state.completed_at or state.updated_at
    name = started.name if started else state.name
    spans: list[Span] = [
        Span(kind="orchestration", name=name, start=start, end=end, outcome=status if end else "pending")
    ]
    first_episode = next((e for e in events if isinstance(e, OrchestratorStarted)), None)
    if first_episode is not None and first_episode.timestamp > start:
        label = "scheduled start" if started and started.scheduled_start else "waiting for a worker"
        spans.append(
            Span(kind="queued", name=label, start=start, end=first_episode.timestamp, outcome="completed")
        )
    spans.extend(_task_spans(events, end))
    spans.sort(key=lambda s: (s.kind != "orchestration", s.kind != "queued", s.start))
    return Timeline(
        instance_id=state.instance_id,
        execution_id=execution_id,
        name=name,
        status=status,
        start=start,
        end=end,
        now=now,
        spans=tuple(spans),
    )


def _task_spans(events: Sequence[HistoryEvent], end: int | None) -> list[Span]:
    spans = _SpanBuilder()
    for event in events:
        spans.add(event)
    return spans.finish(end)


def _instant(name: str, at: int) -> Span:
    return Span(kind="event", name=name, start=at, end=at, outcome="received")


class _SpanBuilder:
    """Pairs scheduling events with their completions, and suspensions with their resumes."""

    def __init__(self) -> None:
        self.opened: dict[int, HistoryEvent] = {}
        self.spans: list[Span] = []
        self.suspended_at: int | None = None

    def add(self, event: HistoryEvent) -> None:
        if isinstance(event, _SCHEDULING):
            self.opened[event.task_id] = event
        elif type(event) in _COMPLETIONS:
            self._complete(event)
        elif isinstance(event, EventRaised):
            self.spans.append(_instant(event.name, event.timestamp))
        elif isinstance(event, ExecutionTerminated):
            self.spans.append(_instant("terminate", event.timestamp))
        elif isinstance(event, ExecutionSuspended):
            self.suspended_at = event.timestamp
        elif isinstance(event, ExecutionResumed):
            self._resume(event.timestamp)

    def _complete(self, event: HistoryEvent) -> None:
        begun = self.opened.pop(getattr(event, "task_id", -1), None)
        if begun is not None:
            outcome = _COMPLETIONS[type(event)]
            self.spans.append(_span(begun, event.timestamp, outcome, getattr(event, "failure", None)))

    def _resume(self, at: int | None, outcome: str = "completed") -> None:
        if self.suspended_at is not None:
            self.spans.append(
                Span(kind="suspended", name="suspended", start=self.suspended_at, end=at, outcome=outcome)
            )
            self.suspended_at = None

    def finish(self, end: int | None) -> list[Span]:
        self._resume(end, "pending" if end is None else "unfinished")
        for begun in self.opened.values():
            self.spans.append(_span(begun, end, "pending" if end is None else "unfinished", None))
        return self.spans


def _span(begun: HistoryEvent, end: int | None, outcome: str, failure: FailureDetails | None) -> Span:
    if isinstance(begun, TaskScheduled):
        kind, name, target = "activity", begun.name, None
    elif isinstance(begun, TimerCreated):
        kind, name, target = "timer", "timer", str(begun.fire_at)
    else:
        assert isinstance(begun, SubOrchestrationCreated)
        kind, name, target = "sub_orchestration", begun.name, begun.instance_id
    return Span(
        kind=kind,
        name=name,
        start=begun.timestamp,
        end=end,
        outcome=outcome,
        task_id=begun.task_ref,
        target=target,
        failure=failure,
    )


class TaskNames:
    """Completions carry only a task id: name them after the event that scheduled them."""

    def __init__(self) -> None:
        self._by_task: dict[int, str] = {}

    def of(self, event: HistoryEvent) -> str:
        name = getattr(event, "name", None)
        task = event.task_ref
        if name is not None:
            if task is not None:
                self._by_task[task] = str(name)
            return str(name)
        return self._by_task.get(task, "") if task is not None else ""
