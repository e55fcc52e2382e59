"""Conformance: listing, history, purge, scale metrics and the workers table."""

from __future__ import annotations

import pytest

from dtctl.core.decision import CreateTimer, ScheduleTask
from dtctl.core.history import COMPLETED, FAILED, PENDING, RUNNING, TERMINATED
from dtctl.errors import InstanceNotFound, UsageError
from dtctl.hub.base import InstanceQuery, PurgeQuery, ScaleMetrics, TaskHub, WorkerInfo
from tests.hub.conftest import StepClock
from tests.hub.hub_helpers import lease, start, step


def ids(hub: TaskHub, **filters: object) -> list[str]:
    return [s.instance_id for s in hub.list_instances(InstanceQuery(**filters)).instances]  # type: ignore[arg-type]


# --- list -----------------------------------------------------------------------------------------


@pytest.fixture
def population(hub: TaskHub, clock: StepClock) -> TaskHub:
    """order-0..4 (name "order"), job-0..2 (name "job"), one second apart.

    order-1 is COMPLETED, job-0 RUNNING, the rest PENDING.
    """
    for n in range(5):
        start(hub, f"order-{n}", name="order", input=f'"{n}"')
        clock.advance(1)
    for n in range(3):
        start(hub, f"job-{n}", name="job")
        clock.advance(1)
    step(hub, "order-1", COMPLETED)
    step(hub, "job-0")
    return hub


def test_list_newest_first_without_payloads_by_default(population: TaskHub) -> None:
    page = population.list_instances(InstanceQuery())
    assert [s.instance_id for s in page.instances] == [
        "job-2", "job-1", "job-0", "order-4", "order-3", "order-2", "order-1", "order-0",
    ]  # fmt: skip
    assert page.next_cursor is None
    assert all(s.input is None for s in page.instances)
    with_payloads = population.list_instances(InstanceQuery(include_payloads=True, name="order", limit=1))
    assert with_payloads.instances[0].input == '"4"'


def test_list_filters(population: TaskHub, clock: StepClock) -> None:
    assert ids(population, statuses=(COMPLETED,)) == ["order-1"]
    assert ids(population, statuses=(RUNNING, COMPLETED)) == ["job-0", "order-1"]
    assert ids(population, name="job") == ["job-2", "job-1", "job-0"]
    assert ids(population, prefix="order-") == ["order-4", "order-3", "order-2", "order-1", "order-0"]
    assert ids(population, prefix="job-1") == ["job-1"]
    assert ids(population, prefix="zzz") == []
    t0 = clock() - 8_000_000  # the first instance's created_at
    assert ids(population, created_after=t0, created_before=t0 + 3_000_000) == ["order-2", "order-1"]
    assert ids(population, statuses=(PENDING,), name="order", prefix="order-", created_after=t0) == [
        "order-4", "order-3", "order-2",
    ]  # fmt: skip
    with pytest.raises(UsageError):
        ids(population, statuses=("BOGUS",))


def test_list_pages_with_a_cursor(population: TaskHub) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = population.list_instances(InstanceQuery(limit=3, cursor=cursor))
        seen.extend(s.instance_id for s in page.instances)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == ids(population, limit=100)


def test_list_pages_through_ties_in_created_time(hub: TaskHub) -> None:
    start(hub, *[f"same-{n}" for n in range(7)])  # one batch: one created_at
    first = hub.list_instances(InstanceQuery(limit=4))
    second = hub.list_instances(InstanceQuery(limit=4, cursor=first.next_cursor))
    both = [s.instance_id for s in first.instances + second.instances]
    assert sorted(both) == sorted(f"same-{n}" for n in range(7)) and len(set(both)) == 7
    assert second.next_cursor is None


def test_bad_cursor_is_a_usage_error(hub: TaskHub) -> None:
    with pytest.raises(UsageError):
        hub.list_instances(InstanceQuery(cursor="not a cursor"))


# --- history --------------------------------------------------------------------------------------


def test_history_of_a_missing_instance(hub: TaskHub) -> None:
    with pytest.raises(InstanceNotFound):
        hub.get_history("ghost")


def test_history_records_carry_sequence_and_execution(hub: TaskHub) -> None:
    start(hub, "a")
    item = step(hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    hub.raise_event("a", "e", None)
    step(hub, "a")
    records = hub.get_history("a")
    assert [r.sequence for r in records] == list(range(5))
    assert {r.execution_id for r in records} == {item.execution_id}
    assert hub.load_history("a", item.execution_id) == [r.event for r in records]
    assert hub.load_history("a", "no-such-execution") == []


# --- purge ----------------------------------------------------------------------------------------


def finished(hub: TaskHub, clock: StepClock) -> None:
    """done-0..3 COMPLETED (one second apart), fail-0 FAILED, term-0 TERMINATED.

    live-0 is RUNNING and new-0 PENDING.
    """
    start(hub, "done-0", "done-1", "done-2", "done-3", "fail-0", "term-0", "live-0", "new-0")
    for n in range(4):
        step(hub, f"done-{n}", COMPLETED, actions=[ScheduleTask(task_id=0, name="act")])
        clock.advance(1)
    step(hub, "fail-0", FAILED)
    hub.terminate("term-0", None)  # PENDING and not leased: terminated at once
    step(hub, "live-0", actions=[CreateTimer(task_id=0, fire_at=10**17)])


def test_purge_only_touches_terminal_instances(hub: TaskHub, clock: StepClock) -> None:
    finished(hub, clock)
    assert hub.purge(PurgeQuery(instance_ids=("live-0", "new-0", "done-0", "ghost"))) == 1
    assert hub.get_instance("done-0") is None
    assert hub.get_instance("live-0") is not None and hub.get_instance("new-0") is not None
    with pytest.raises(UsageError):
        hub.purge(PurgeQuery(statuses=(RUNNING,)))


def test_purge_by_status_and_completion_time(hub: TaskHub, clock: StepClock) -> None:
    finished(hub, clock)
    cutoff = hub.get_instance("done-2").completed_at  # type: ignore[union-attr]
    assert hub.purge(PurgeQuery(statuses=(COMPLETED,), completed_before=cutoff)) == 2
    assert [i for i in ("done-0", "done-1", "done-2", "done-3") if hub.get_instance(i)] == [
        "done-2",
        "done-3",
    ]
    assert hub.purge(PurgeQuery(statuses=(FAILED, TERMINATED))) == 2
    remaining = ids(hub)
    assert sorted(remaining) == ["done-2", "done-3", "live-0", "new-0"]


def test_purge_removes_every_row_and_runs_in_batches(hub: TaskHub, clock: StepClock) -> None:
    finished(hub, clock)
    hub.raise_event("done-0", "late", None, force=True)
    assert hub.purge(PurgeQuery(batch_size=2)) == 6
    for instance_id in ("done-0", "done-3", "fail-0", "term-0"):
        assert hub.get_instance(instance_id) is None
        assert hub.pending_messages(instance_id) == [] and hub.pending_activities(instance_id) == []
        with pytest.raises(InstanceNotFound):
            hub.get_history(instance_id)
    # Re-running (as after a purge killed between batches) finishes the job and then finds nothing.
    assert hub.purge(PurgeQuery(batch_size=2)) == 0
    assert sorted(ids(hub)) == ["live-0", "new-0"]


def test_purge_resumes_after_a_partial_run(hub: TaskHub, clock: StepClock) -> None:
    finished(hub, clock)
    assert hub.purge(PurgeQuery(instance_ids=("done-1", "done-2"))) == 2  # "the first batches"
    assert hub.purge(PurgeQuery(statuses=(COMPLETED,), batch_size=1)) == 2
    assert hub.purge(PurgeQuery(statuses=(COMPLETED,), batch_size=1)) == 0


# --- scale metrics --------------------------------------------------------------------------------


def test_scale_metrics_are_zero_when_idle(hub: TaskHub) -> None:
    assert hub.scale_metrics() == ScaleMetrics(live_orchestrations=0, live_activities=0)


def test_scale_metrics_count_instances_once_and_tasks_each(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    step(hub, "a", actions=[ScheduleTask(task_id=n, name="act") for n in range(3)])
    for n in range(4):
        hub.raise_event("a", f"e{n}", None)  # k = 4 visible events
    m = hub.scale_metrics()
    assert (m.live_orchestrations, m.live_activities, m.visible_inbox_instances) == (1, 3, 1)
    hub.lease_activities("w", None, limit=1, lease_seconds=30)  # leased tasks still count
    assert hub.scale_metrics().live_activities == 3
    assert hub.scale_metrics().scheduled_activities == 3


def test_scale_metrics_ignore_future_work_and_count_leased_instances(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "timer")
    step(hub, "timer", actions=[CreateTimer(task_id=0, fire_at=clock() + 60_000_000)])
    start(hub, "later", start_at=clock() + 60_000_000)
    start(hub, "retry")
    step(hub, "retry", actions=[ScheduleTask(task_id=0, name="act")])
    [task] = hub.lease_activities("w", None, limit=1, lease_seconds=30)
    hub.abandon_activity(task)  # visible again only after a backoff
    m = hub.scale_metrics()
    assert (m.live_orchestrations, m.live_activities, m.future_timers) == (0, 0, 1)
    start(hub, "busy")
    item = lease(hub, "busy")
    m = hub.scale_metrics()
    assert (m.live_orchestrations, m.leased_orchestrations, m.visible_inbox_instances) == (1, 1, 1)
    hub.raise_event("busy", "e", None)  # leased AND has a visible event: still one
    assert hub.scale_metrics().live_orchestrations == 1
    hub.abandon_orchestration(item)
    clock.advance(61)
    m = hub.scale_metrics()
    assert (m.live_orchestrations, m.live_activities, m.future_timers) == (3, 1, 0)


# --- workers --------------------------------------------------------------------------------------


def test_worker_heartbeats(hub: TaskHub, clock: StepClock) -> None:
    info = WorkerInfo(
        worker_id="w1",
        host="h",
        pid=42,
        started_at=clock(),
        orchestrations=("a", "b"),
        activities=("x",),
        max_orchestrations=4,
        max_activities=8,
        extra={"version": "1"},
    )
    hub.heartbeat(info)
    clock.advance(5)
    hub.heartbeat(
        WorkerInfo(worker_id="w1", host="h", pid=42, started_at=info.started_at, inflight_activities=3)
    )
    hub.heartbeat(WorkerInfo(worker_id="w2", host="h2", pid=7, started_at=clock(), activities=("y",)))
    [w1, w2] = hub.list_workers()
    assert (w1.worker_id, w1.heartbeat_at, w1.inflight_activities, w1.orchestrations) == (
        "w1",
        clock(),
        3,
        (),
    )
    assert (w2.worker_id, w2.activities, w2.pid) == ("w2", ("y",), 7)
    first = hub.list_workers()[0]
    assert first.started_at == info.started_at
    hub.remove_worker("w1")
    assert [w.worker_id for w in hub.list_workers()] == ["w2"]
    hub.heartbeat(info)
    assert {w.worker_id: w.extra for w in hub.list_workers()}["w1"] == {"version": "1"}
