"""The client's derived views, from built records: what an instance waits for, its timeline, live workers."""

from __future__ import annotations

from pathlib import Path

from dtctl.client import TaskHubClient
from dtctl.client_views import build_timeline, derive_waiting_for
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    HistoryEvent,
    OrchestratorStarted,
    SubOrchestrationCreated,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from dtctl.hub import open_hub
from dtctl.hub.base import ActivityWorkItem, HistoryRecord, InboxMessage, InstanceState, WorkerInfo

S = 1_000_000  # one second in µs
T0 = 1_700_000_000 * S


def records(*events: HistoryEvent) -> list[HistoryRecord]:
    return [HistoryRecord("exec-1", n, e) for n, e in enumerate(events)]


def state(status: str = "RUNNING", **extra: object) -> InstanceState:
    fields: dict[str, object] = {
        "instance_id": "i-1",
        "execution_id": "exec-1",
        "name": "flow",
        "status": status,
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(extra)
    return InstanceState(**fields)  # type: ignore[arg-type]


HISTORY = records(
    OrchestratorStarted(timestamp=T0 + 1 * S),
    ExecutionStarted(timestamp=T0, name="flow", instance_id="i-1", execution_id="exec-1"),
    TaskScheduled(timestamp=T0 + 1 * S, task_id=0, name="fetch"),
    TaskScheduled(timestamp=T0 + 1 * S, task_id=1, name="charge"),
    TaskScheduled(timestamp=T0 + 1 * S, task_id=2, name="notify"),
    TimerCreated(timestamp=T0 + 1 * S, task_id=3, fire_at=T0 + 100 * S),
    SubOrchestrationCreated(timestamp=T0 + 1 * S, task_id=4, name="child", instance_id="i-1:child"),
    TaskScheduled(timestamp=T0 + 1 * S, task_id=5, name="done_already"),
    OrchestratorStarted(timestamp=T0 + 2 * S),
    TaskCompleted(timestamp=T0 + 2 * S, task_id=5, result="1"),
    EventRaised(timestamp=T0 + 2 * S, name="approval", input="true"),
)


def queue_row(task_id: int, name: str, *, owner: str | None, expires: int = 0) -> ActivityWorkItem:
    return ActivityWorkItem(
        id=task_id,
        instance_id="i-1",
        execution_id="exec-1",
        task_id=task_id,
        name=name,
        input=None,
        lease_token="t" if owner else "",
        lease_expires=expires,
        dequeue_count=1 if owner else 0,
        lease_owner=owner,
        visible_at=T0 + 1 * S,
    )


def test_waiting_for_sorts_out_every_open_task() -> None:
    now = T0 + 10 * S
    inbox = [
        InboxMessage(1, TaskCompleted(timestamp=T0 + 5 * S, task_id=2, result='"sent"'), 0),
        InboxMessage(2, TimerFired(timestamp=T0 + 100 * S, task_id=3, fire_at=T0 + 100 * S), 0),
        InboxMessage(3, EventRaised(timestamp=T0 + 6 * S, name="late"), 0),
    ]
    queue = [
        queue_row(0, "fetch", owner="worker-a", expires=now + 20 * S),
        queue_row(1, "charge", owner=None),
    ]
    waiting = derive_waiting_for(state(), HISTORY, inbox, queue, now)
    assert [(a.task_id, a.name, a.state, a.worker) for a in waiting.activities] == [
        (0, "fetch", "running", "worker-a"),
        (1, "charge", "queued", None),
        (2, "notify", "result_pending", None),
    ]
    (timer,) = waiting.timers
    assert (timer.task_id, timer.fire_at, timer.state) == (3, T0 + 100 * S, "waiting")
    (child,) = waiting.sub_orchestrations
    assert (child.instance_id, child.state) == ("i-1:child", "running")
    assert waiting.events_received == ("approval",)
    assert waiting.events_buffered == ("late",)
    assert [(e.kind, e.visible) for e in waiting.new_events] == [
        ("task_completed", True),
        ("timer_fired", False),
        ("event_raised", True),
    ]
    # Once the timer's time has come, it is due: the next episode will process it.
    later = derive_waiting_for(state(), HISTORY, inbox, queue, T0 + 101 * S)
    assert later.timers[0].state == "due"
    # A lease that expired is not "running": the activity is queued again.
    expired = derive_waiting_for(state(), HISTORY, inbox, queue, now + 60 * S)
    assert expired.activities[0].state == "queued"


def test_waiting_for_a_scheduled_start_and_a_running_episode() -> None:
    pending = state("PENDING", scheduled_start=T0 + 60 * S)
    assert derive_waiting_for(pending, [], [], [], T0).start_at == T0 + 60 * S
    assert derive_waiting_for(pending, [], [], [], T0 + 61 * S).start_at is None
    leased = state(lease_owner="worker-b", lease_expires=T0 + 30 * S)
    assert derive_waiting_for(leased, HISTORY, [], [], T0 + 10 * S).episode_worker == "worker-b"
    assert derive_waiting_for(leased, HISTORY, [], [], T0 + 31 * S).episode_worker is None


def test_timeline_bars_from_scheduled_to_completed() -> None:
    failure = FailureDetails(message="card declined", error_type="PaymentError")
    history = records(
        ExecutionStarted(timestamp=T0, name="flow", instance_id="i-1", execution_id="exec-1"),
        OrchestratorStarted(timestamp=T0 + 2 * S),
        TaskScheduled(timestamp=T0 + 2 * S, task_id=0, name="fetch"),
        TimerCreated(timestamp=T0 + 2 * S, task_id=1, fire_at=T0 + 5 * S),
        OrchestratorStarted(timestamp=T0 + 3 * S),
        TaskCompleted(timestamp=T0 + 3 * S, task_id=0, result="1"),
        TaskScheduled(timestamp=T0 + 3 * S, task_id=2, name="charge"),
        TaskFailed(timestamp=T0 + 4 * S, task_id=2, failure=failure),
        EventRaised(timestamp=T0 + 4 * S, name="cancel"),
        ExecutionCompleted(timestamp=T0 + 6 * S, status="FAILED", failure=failure),
    )
    timeline = build_timeline(state("FAILED"), history, T0 + 10 * S)
    assert (timeline.start, timeline.end, timeline.status) == (T0, T0 + 6 * S, "FAILED")
    spans = [(s.kind, s.name, s.task_id, s.start, s.end, s.outcome) for s in timeline.spans]
    assert spans == [
        ("orchestration", "flow", None, T0, T0 + 6 * S, "FAILED"),
        ("queued", "waiting for a worker", None, T0, T0 + 2 * S, "completed"),
        ("activity", "fetch", 0, T0 + 2 * S, T0 + 3 * S, "completed"),
        ("timer", "timer", 1, T0 + 2 * S, T0 + 6 * S, "unfinished"),  # the execution ended first
        ("activity", "charge", 2, T0 + 3 * S, T0 + 4 * S, "failed"),
        ("event", "cancel", None, T0 + 4 * S, T0 + 4 * S, "received"),
    ]
    assert timeline.spans[4].failure == failure


def test_a_running_timeline_leaves_open_bars_open() -> None:
    timeline = build_timeline(state(), HISTORY, T0 + 10 * S)
    assert timeline.end is None
    open_bars = {s.name: s.outcome for s in timeline.spans if s.end is None}
    assert open_bars == {
        "flow": "pending",
        "fetch": "pending",
        "charge": "pending",
        "notify": "pending",
        "timer": "pending",
        "child": "pending",
    }


def test_live_workers_judges_heartbeats_by_the_hubs_clock(tmp_path: Path) -> None:
    clock = [T0]
    hub = open_hub(str(tmp_path / "hub.db"), create=True, clock=lambda: clock[0])
    with TaskHubClient(hub) as client:
        for worker_id, extra in (("steady", {}), ("slow", {"heartbeat_seconds": 60})):
            hub.heartbeat(
                WorkerInfo(
                    worker_id=worker_id,
                    host="h",
                    pid=1,
                    started_at=T0,
                    orchestrations=("flow",),
                    activities=("fetch",),
                    extra=extra,
                )
            )
        assert {w.worker_id for w in client.live_workers()} == {"steady", "slow"}
        clock[0] = T0 + 31 * S  # past 30 s: the default worker is lost; one beating every 60 s is not
        assert {w.worker_id for w in client.live_workers()} == {"slow"}
        unclaimed = client.unclaimed_names(["flow", "other"], ["fetch", "send"])
        assert (unclaimed.orchestrations, unclaimed.activities) == (("other",), ("send",))
        assert unclaimed.live_workers == 1
        clock[0] = T0 + 181 * S
        assert client.live_workers() == []
        assert client.unclaimed_names(["flow"]).orchestrations == ("flow",)


def test_an_instance_that_ended_without_an_episode() -> None:
    terminated = state("TERMINATED", completed_at=T0 + 3 * S, updated_at=T0 + 3 * S)
    timeline = build_timeline(terminated, [], T0 + 10 * S)
    assert (timeline.start, timeline.end, timeline.status) == (T0, T0 + 3 * S, "TERMINATED")
    assert [(s.kind, s.outcome) for s in timeline.spans] == [("orchestration", "TERMINATED")]
