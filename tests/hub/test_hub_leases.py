"""Conformance: leases of orchestrations and activities, fencing by token, expiry, abandon, renewal."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

from dtctl.core.decision import CreateTimer, ScheduleTask
from dtctl.core.failure import FailureDetails
from dtctl.core.history import RUNNING, TaskCompleted, TaskFailed, TimerFired
from dtctl.hub.base import ActivityResult, ActivityWorkItem, TaskHub
from tests.hub import hub_procs
from tests.hub.conftest import Backend, StepClock
from tests.hub.hub_helpers import decide, kinds, lease, start, step

N_INSTANCES = 120


def schedule_tasks(hub: TaskHub, instance_id: str, count: int, name: str = "act") -> None:
    step(hub, instance_id, actions=[ScheduleTask(task_id=i, name=name, input=str(i)) for i in range(count)])


def completed(item: ActivityWorkItem, result: str = '"r"') -> ActivityResult:
    return ActivityResult(item, TaskCompleted(task_id=item.task_id, result=result))


# --- orchestration leases -----------------------------------------------------------------------------


def test_lease_returns_all_visible_messages_in_fifo_order(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    hub.raise_event("a", "one", None)
    hub.raise_event("a", "two", None)
    clock.advance(1)
    [item] = hub.lease_orchestrations("w1", None, limit=5, lease_seconds=30)
    assert kinds([m.event for m in item.messages]) == ["execution_started", "event_raised", "event_raised"]
    assert [m.event.name for m in item.messages[1:]] == ["one", "two"]  # type: ignore[attr-defined]
    assert [m.id for m in item.messages] == sorted(m.id for m in item.messages)
    assert item.leased_at == clock()
    assert item.lease_expires == clock() + 30_000_000
    assert item.history_length == 0 and item.dequeue_count == 1 and item.name == "orch"


def test_a_leased_instance_is_not_leased_again(hub: TaskHub) -> None:
    start(hub, "a", "b")
    first = hub.lease_orchestrations("w1", None, limit=1, lease_seconds=30)
    second = hub.lease_orchestrations("w2", None, limit=5, lease_seconds=30)
    assert len(first) == 1 and len(second) == 1
    assert first[0].instance_id != second[0].instance_id
    assert hub.lease_orchestrations("w3", None, limit=5, lease_seconds=30) == []


def test_names_filter(hub: TaskHub) -> None:
    start(hub, "a", name="alpha")
    start(hub, "b", name="beta")
    assert hub.lease_orchestrations("w", ["gamma"], limit=5, lease_seconds=30) == []
    assert hub.lease_orchestrations("w", [], limit=5, lease_seconds=30) == []
    [item] = hub.lease_orchestrations("w", ["beta"], limit=5, lease_seconds=30)
    assert item.instance_id == "b"


def test_lease_expiry_lets_another_worker_take_over(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    [first] = hub.lease_orchestrations("w1", None, limit=1, lease_seconds=10)
    clock.advance(9.999)
    assert hub.lease_orchestrations("w2", None, limit=1, lease_seconds=10) == []
    clock.advance(0.001)
    [second] = hub.lease_orchestrations("w2", None, limit=1, lease_seconds=10)
    assert second.instance_id == "a" and second.lease_token != first.lease_token
    assert second.dequeue_count == 2
    # The first owner's checkpoint is fenced off: nothing of it is written.
    [result] = hub.checkpoint([(first, decide(first, actions=[ScheduleTask(task_id=0, name="act")]))])
    assert not result.committed and result.reason and "lease" in result.reason
    assert hub.get_history("a") == []
    assert hub.pending_activities("a") == []
    assert len(hub.pending_messages("a")) == 1
    [ok] = hub.checkpoint([(second, decide(second))])
    assert ok.committed


def test_stale_checkpoint_in_a_batch_does_not_block_the_others(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a", "b")
    items = {i.instance_id: i for i in hub.lease_orchestrations("w1", None, limit=2, lease_seconds=10)}
    clock.advance(11)
    [stolen] = hub.lease_orchestrations("w2", None, limit=1, lease_seconds=10)
    kept = "b" if stolen.instance_id == "a" else "a"
    results = hub.checkpoint(
        [(items[stolen.instance_id], decide(items[stolen.instance_id])), (items[kept], decide(items[kept]))]
    )
    assert [(r.instance_id, r.committed) for r in results] == [(stolen.instance_id, False), (kept, True)]
    assert hub.get_history(stolen.instance_id) == []
    assert len(hub.get_history(kept)) == 2


def test_checkpoint_releases_the_lease_and_appends_history(hub: TaskHub) -> None:
    start(hub, "a")
    item = step(hub, "a")
    state = hub.get_instance("a")
    assert state is not None
    assert (state.status, state.lease_owner, state.lease_expires, state.history_length) == (
        RUNNING,
        None,
        None,
        2,
    )
    records = hub.get_history("a")
    assert [r.sequence for r in records] == [0, 1]
    assert kinds([r.event for r in records]) == ["orchestrator_started", "execution_started"]
    assert all(r.execution_id == item.execution_id for r in records)
    assert hub.load_history("a", item.execution_id) == [r.event for r in records]
    assert hub.pending_messages("a") == []


def test_events_arriving_during_a_lease_stay_and_make_it_leasable_again(hub: TaskHub) -> None:
    start(hub, "a")
    item = lease(hub, "a")
    hub.raise_event("a", "during", None)
    assert hub.lease_orchestrations("w2", None, limit=5, lease_seconds=30) == []
    [result] = hub.checkpoint([(item, decide(item))])
    assert result.committed
    assert kinds([m.event for m in hub.pending_messages("a")]) == ["event_raised"]
    [again] = hub.lease_orchestrations("w2", None, limit=5, lease_seconds=30)
    assert again.history_length == 2
    assert kinds([m.event for m in again.messages]) == ["event_raised"]


def test_abandon_orchestration_releases_only_with_the_current_token(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    first = lease(hub, "a", lease_seconds=10)
    hub.abandon_orchestration(first)
    second = lease(hub, "a", owner="w2")
    hub.abandon_orchestration(first)  # stale: must not free the new owner's lease
    assert hub.lease_orchestrations("w3", None, limit=5, lease_seconds=30) == []
    hub.abandon_orchestration(second)
    assert len(hub.lease_orchestrations("w3", None, limit=5, lease_seconds=30)) == 1


def test_renew_and_release_leases(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a", "b")
    items = hub.lease_orchestrations("w1", None, limit=2, lease_seconds=10)
    clock.advance(8)
    lost_instances, lost_tasks = hub.renew_leases(items, [], 10)
    assert (lost_instances, lost_tasks) == ([], [])
    clock.advance(8)  # past the first expiry, inside the renewed one
    assert hub.lease_orchestrations("w2", None, limit=5, lease_seconds=30) == []
    clock.advance(3)
    [stolen] = hub.lease_orchestrations("w2", None, limit=1, lease_seconds=30)
    lost_instances, _ = hub.renew_leases(items, [], 10)
    assert lost_instances == [stolen.instance_id]
    assert hub.release_leases("w1") == 1
    [back] = hub.lease_orchestrations("w3", None, limit=5, lease_seconds=30)
    assert back.instance_id != stolen.instance_id


def test_timers_are_invisible_until_due(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    fire_at = clock() + 3_600_000_000
    item = step(hub, "a", actions=[CreateTimer(task_id=0, fire_at=fire_at)])
    assert hub.lease_orchestrations("w", None, limit=5, lease_seconds=30) == []
    assert hub.scale_metrics().future_timers == 1
    clock.advance(3599.999999)
    assert hub.lease_orchestrations("w", None, limit=5, lease_seconds=30) == []
    clock.advance(0.000001)
    [fired] = hub.lease_orchestrations("w", None, limit=5, lease_seconds=30)
    [message] = fired.messages
    assert isinstance(message.event, TimerFired)
    assert (message.event.task_id, message.event.fire_at) == (0, fire_at)
    assert fired.execution_id == item.execution_id


def test_lease_with_many_threads_hands_each_instance_out_once(backend: Backend, hub: TaskHub) -> None:
    start(hub, *[f"i{n}" for n in range(N_INSTANCES)])
    threads = 8
    barrier = threading.Barrier(threads)
    leased: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(slot: int) -> None:
        own = backend.open()  # each thread its own connection
        try:
            barrier.wait()
            while batch := own.lease_orchestrations(f"t{slot}", None, limit=3, lease_seconds=600):
                leased[slot].extend(item.instance_id for item in batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not errors
    counts = Counter(i for per_thread in leased for i in per_thread)
    assert set(counts) == {f"i{n}" for n in range(N_INSTANCES)}
    assert max(counts.values()) == 1


def test_lease_with_many_processes_hands_each_item_out_once(backend: Backend, hub: TaskHub) -> None:
    start(hub, *[f"i{n}" for n in range(N_INSTANCES)])
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(
            hub_procs.lease_all_orchestrations, [(backend.location, f"p{n}") for n in range(4)]
        )
    counts = Counter(i for per_process in results for i in per_process)
    assert set(counts) == {f"i{n}" for n in range(N_INSTANCES)}
    assert max(counts.values()) == 1
    # The same for the activity queue.
    hub.release_leases("p0"), hub.release_leases("p1"), hub.release_leases("p2"), hub.release_leases("p3")
    for n in range(N_INSTANCES // 4):
        schedule_tasks(hub, f"i{n}", 3)
    with context.Pool(4) as pool:
        task_results = pool.starmap(
            hub_procs.lease_all_activities, [(backend.location, f"q{n}") for n in range(4)]
        )
    task_counts = Counter(i for per_process in task_results for i in per_process)
    assert len(task_counts) == 3 * (N_INSTANCES // 4)
    assert max(task_counts.values()) == 1


# --- activity leases ------------------------------------------------------------------------------------


def test_activities_are_leased_fifo_with_their_inputs(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    schedule_tasks(hub, "a", 3)
    items = hub.lease_activities("w", None, limit=2, lease_seconds=30)
    assert [(i.task_id, i.input, i.name, i.dequeue_count) for i in items] == [
        (0, "0", "act", 1),
        (1, "1", "act", 1),
    ]
    assert all(i.lease_expires == clock() + 30_000_000 for i in items)
    [last] = hub.lease_activities("w2", None, limit=5, lease_seconds=30)
    assert last.task_id == 2
    pending = hub.pending_activities("a")
    assert [(p.task_id, p.lease_owner, p.lease_token) for p in pending] == [
        (0, "w", items[0].lease_token),
        (1, "w", items[1].lease_token),
        (2, "w2", last.lease_token),
    ]
    assert all(p.visible_at == clock() for p in pending)
    assert hub.lease_activities("w3", None, limit=5, lease_seconds=30) == []


def test_activity_names_filter(hub: TaskHub) -> None:
    start(hub, "a")
    step(hub, "a", actions=[ScheduleTask(task_id=0, name="x"), ScheduleTask(task_id=1, name="y")])
    assert hub.lease_activities("w", ["z"], limit=5, lease_seconds=30) == []
    [item] = hub.lease_activities("w", ["y"], limit=5, lease_seconds=30)
    assert item.name == "y"


def test_completion_goes_to_the_inbox_tagged_with_the_execution(hub: TaskHub) -> None:
    start(hub, "a")
    schedule_tasks(hub, "a", 2)
    items = hub.lease_activities("w", None, limit=5, lease_seconds=30)
    failure = FailureDetails("boom", "builtins.ValueError")
    accepted = hub.complete_activities(
        [completed(items[0], '"r0"'), ActivityResult(items[1], TaskFailed(task_id=1, failure=failure))]
    )
    assert accepted == [True, True]
    assert hub.pending_activities("a") == []
    [item] = hub.lease_orchestrations("w", None, limit=5, lease_seconds=30)
    events = [m.event for m in item.messages]
    assert isinstance(events[0], TaskCompleted) and (events[0].task_id, events[0].result) == (0, '"r0"')
    assert isinstance(events[1], TaskFailed) and events[1].failure == failure
    assert all(e.timestamp > 0 for e in events)


def test_stale_completion_is_rejected_and_writes_nothing(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    schedule_tasks(hub, "a", 1)
    [first] = hub.lease_activities("w1", None, limit=1, lease_seconds=10)
    clock.advance(10)
    [second] = hub.lease_activities("w2", None, limit=1, lease_seconds=10)
    assert second.id == first.id and second.dequeue_count == 2
    assert hub.complete_activities([completed(first)]) == [False]
    assert hub.pending_messages("a") == []
    assert len(hub.pending_activities("a")) == 1
    assert hub.complete_activities([completed(second)]) == [True]
    assert hub.complete_activities([completed(second)]) == [False]  # recorded exactly once
    assert kinds([m.event for m in hub.pending_messages("a")]) == ["task_completed"]


def test_completion_for_a_terminated_instance_is_discarded(hub: TaskHub) -> None:
    start(hub, "a")
    schedule_tasks(hub, "a", 1)
    [task] = hub.lease_activities("w", None, limit=1, lease_seconds=30)
    hub.terminate("a", "stop")
    step(hub, "a", "TERMINATED", output='"stop"')
    # The terminal checkpoint already dropped the queue row: the completion is refused, nothing lands.
    assert hub.complete_activities([completed(task)]) == [False]
    assert hub.pending_messages("a") == []
    assert hub.pending_activities("a") == []


def test_completion_while_live_is_delivered_and_after_the_end_refused(hub: TaskHub) -> None:
    start(hub, "a")
    schedule_tasks(hub, "a", 2)
    [t0, t1] = hub.lease_activities("w", None, limit=2, lease_seconds=30)
    hub.terminate("a", None)
    item = lease(hub, "a")
    assert hub.complete_activities([completed(t0)]) == [True]  # the instance is still live: delivered
    [result] = hub.checkpoint([(item, decide(item, "TERMINATED"))])
    assert result.committed
    # The terminal checkpoint removed the instance's queue rows: the late completion writes nothing.
    assert hub.complete_activities([completed(t1)]) == [False]
    assert hub.pending_messages("a") == [] and hub.pending_activities("a") == []


def test_abandon_activity_makes_it_visible_again_after_a_backoff(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    schedule_tasks(hub, "a", 1)
    [task] = hub.lease_activities("w1", None, limit=1, lease_seconds=30)
    hub.abandon_activity(task)
    assert hub.lease_activities("w2", None, limit=1, lease_seconds=30) == []
    clock.advance(60)
    [again] = hub.lease_activities("w2", None, limit=1, lease_seconds=30)
    assert again.id == task.id and again.dequeue_count == 2
    hub.abandon_activity(task)  # stale token: no effect on the new owner
    assert hub.complete_activities([completed(again)]) == [True]


def test_renew_and_release_activity_leases(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    schedule_tasks(hub, "a", 2)
    tasks = hub.lease_activities("w1", None, limit=2, lease_seconds=10)
    clock.advance(8)
    assert hub.renew_leases([], tasks, 10) == ([], [])
    clock.advance(8)
    assert hub.lease_activities("w2", None, limit=5, lease_seconds=10) == []
    clock.advance(3)
    [stolen] = hub.lease_activities("w2", None, limit=1, lease_seconds=10)
    assert hub.renew_leases([], tasks, 10) == ([], [stolen.id])
    assert hub.release_leases("w1") == 1
    [back] = hub.lease_activities("w3", None, limit=5, lease_seconds=10)
    assert back.id != stolen.id
