"""Conformance: what a checkpoint writes for each kind of decision."""

from __future__ import annotations

from dtctl.core.decision import ContinueAsNew, CreateTimer, ScheduleTask, SendEvent, StartSubOrchestration
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    PENDING,
    RUNNING,
    TERMINATED,
    EventRaised,
    ExecutionStarted,
    SubOrchestrationCompleted,
    SubOrchestrationFailed,
    TaskCompleted,
)
from dtctl.hub.base import ActivityResult, InstanceQuery, TaskHub
from tests.hub.conftest import StepClock
from tests.hub.hub_helpers import decide, kinds, lease, start, step


def inbox(hub: TaskHub, instance_id: str) -> list[str]:
    return kinds([m.event for m in hub.pending_messages(instance_id)])


def test_schedule_task_enqueues_activity_work(hub: TaskHub) -> None:
    start(hub, "a")
    item = step(hub, "a", actions=[ScheduleTask(task_id=0, name="act", input='"x"')])
    [task] = hub.pending_activities("a")
    assert (task.instance_id, task.execution_id, task.task_id, task.name, task.input) == (
        "a",
        item.execution_id,
        0,
        "act",
        '"x"',
    )
    assert kinds([r.event for r in hub.get_history("a")]) == [
        "orchestrator_started",
        "execution_started",
        "task_scheduled",
    ]


def test_custom_status_output_and_completion(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    step(hub, "a", custom_status='"halfway"')
    state = hub.get_instance("a")
    assert state is not None and (state.status, state.custom_status, state.completed_at) == (
        RUNNING,
        '"halfway"',
        None,
    )
    hub.raise_event("a", "go", None)
    clock.advance(5)
    step(hub, "a", COMPLETED, output='{"n":3}', custom_status='"done"')
    state = hub.get_instance("a")
    assert state is not None
    assert (state.status, state.output, state.custom_status) == (COMPLETED, '{"n":3}', '"done"')
    assert state.completed_at == state.updated_at == clock()
    assert state.history_length == len(hub.get_history("a")) == 5


def test_failure_is_stored(hub: TaskHub) -> None:
    start(hub, "a")
    failure = FailureDetails("bad input", "builtins.ValueError", "Traceback …")
    step(hub, "a", FAILED, failure=failure)
    state = hub.get_instance("a")
    assert state is not None and state.status == FAILED and state.failure == failure


def test_terminal_checkpoint_drops_leftover_work(hub: TaskHub) -> None:
    start(hub, "a")
    step(hub, "a", actions=[ScheduleTask(task_id=0, name="act"), CreateTimer(task_id=1, fire_at=10**17)])
    hub.raise_event("a", "e1", None)
    item = lease(hub, "a")
    hub.raise_event("a", "arrived-during-lease", None)
    [result] = hub.checkpoint([(item, decide(item, COMPLETED, output="1"))])
    assert result.committed
    assert hub.pending_messages("a") == []
    assert hub.pending_activities("a") == []


def test_actions_of_a_finishing_episode_are_not_left_behind(hub: TaskHub) -> None:
    start(hub, "a")
    step(
        hub, "a", COMPLETED, actions=[ScheduleTask(task_id=0, name="act"), CreateTimer(task_id=1, fire_at=1)]
    )
    assert hub.pending_activities("a") == [] and hub.pending_messages("a") == []


def test_timer_is_tagged_and_fires_into_the_inbox(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    step(hub, "a", actions=[CreateTimer(task_id=0, fire_at=clock() + 5_000_000)])
    [timer] = hub.pending_messages("a")
    assert timer.event.kind == "timer_fired"


def test_sub_orchestration_lifecycle(hub: TaskHub) -> None:
    start(hub, "parent")
    parent = step(
        hub, "parent", actions=[StartSubOrchestration(task_id=3, name="kid", instance_id="child", input="7")]
    )
    child = hub.get_instance("child")
    assert child is not None
    assert (child.status, child.name, child.input, child.parent_instance_id, child.parent_task_id) == (
        PENDING,
        "kid",
        "7",
        "parent",
        3,
    )
    [started] = hub.pending_messages("child")
    assert isinstance(started.event, ExecutionStarted)
    assert (started.event.parent_instance_id, started.event.parent_task_id) == ("parent", 3)
    step(hub, "child", COMPLETED, output='"kid result"')
    [done] = hub.pending_messages("parent")
    assert isinstance(done.event, SubOrchestrationCompleted)
    assert (done.event.task_id, done.event.result) == (3, '"kid result"')
    assert lease(hub, "parent").execution_id == parent.execution_id


def test_failed_and_terminated_children_fail_the_parent_task(hub: TaskHub) -> None:
    start(hub, "parent")
    step(
        hub,
        "parent",
        actions=[
            StartSubOrchestration(task_id=0, name="kid", instance_id="c0"),
            StartSubOrchestration(task_id=1, name="kid", instance_id="c1"),
        ],
    )
    failure = FailureDetails("kid broke", "builtins.RuntimeError")
    step(hub, "c0", FAILED, failure=failure)
    step(hub, "c1")
    hub.terminate("c1", "enough")
    step(hub, "c1", TERMINATED, output='"enough"')
    events = [m.event for m in hub.pending_messages("parent")]
    assert all(isinstance(e, SubOrchestrationFailed) for e in events)
    failed = {e.task_id: e.failure for e in events}  # type: ignore[attr-defined]
    assert failed[0] == failure
    assert "terminated" in failed[1].message and "c1" in failed[1].message


def test_starting_a_sub_orchestration_over_a_live_id_fails_the_task(hub: TaskHub) -> None:
    start(hub, "busy")
    start(hub, "parent")
    step(hub, "parent", actions=[StartSubOrchestration(task_id=4, name="kid", instance_id="busy")])
    [refused] = hub.pending_messages("parent")
    assert isinstance(refused.event, SubOrchestrationFailed) and refused.event.task_id == 4
    busy = hub.get_instance("busy")
    assert busy is not None and busy.parent_instance_id is None


def test_send_event_reaches_live_targets_only(hub: TaskHub) -> None:
    start(hub, "sender", "target", "done")
    step(hub, "done", COMPLETED)
    step(
        hub,
        "sender",
        actions=[
            SendEvent(task_id=0, instance_id="target", name="ping", data='"hi"'),
            SendEvent(task_id=1, instance_id="done", name="ping"),
            SendEvent(task_id=2, instance_id="missing", name="ping"),
        ],
    )
    events = [m.event for m in hub.pending_messages("target")]
    assert isinstance(events[-1], EventRaised) and (events[-1].name, events[-1].input) == ("ping", '"hi"')
    assert hub.pending_messages("done") == []
    assert hub.get_instance("missing") is None


def test_continue_as_new_starts_a_fresh_execution(hub: TaskHub) -> None:
    start(hub, "a", input="0")
    first = step(
        hub, "a", actions=[ScheduleTask(task_id=0, name="act"), CreateTimer(task_id=1, fire_at=10**17)]
    )
    hub.raise_event("a", "carried", '"c"')
    item = lease(hub, "a")
    hub.raise_event("a", "during", None)  # arrives during the lease: goes to the new execution
    spec = ContinueAsNew(
        execution_id="e2" * 16,
        input="1",
        carryover_events=(EventRaised(timestamp=1, name="saved", input="9"),),
    )
    [result] = hub.checkpoint([(item, decide(item, CONTINUED_AS_NEW, continue_as_new=spec))])
    assert result.committed
    state = hub.get_instance("a")
    assert state is not None
    assert (state.execution_id, state.status, state.input, state.history_length) == (
        spec.execution_id,
        RUNNING,
        "1",
        0,
    )
    assert hub.pending_activities("a") == []
    assert hub.get_history("a") == []
    previous = hub.get_history("a", first.execution_id)
    assert previous[-1].event.kind == "continued_as_new"
    nxt = lease(hub, "a")
    assert nxt.execution_id == spec.execution_id
    events = [m.event for m in nxt.messages]
    assert isinstance(events[0], ExecutionStarted)
    assert (events[0].execution_id, events[0].input, events[0].name) == (spec.execution_id, "1", "orch")
    assert [e.name for e in events[1:]] == ["saved", "during"]  # type: ignore[attr-defined]


def test_continue_as_new_delivers_carried_over_events_before_later_arrivals(
    hub: TaskHub, clock: StepClock
) -> None:
    # DTFx order: the new execution sees the saved (older) events first, then whatever arrived meanwhile,
    # each group in its own order.
    start(hub, "a")
    step(hub, "a")
    hub.raise_event("a", "first", None)
    item = lease(hub, "a")
    for name in ("d1", "d2", "d3"):
        hub.raise_event("a", name, None)
    saved = tuple(EventRaised(timestamp=1, name=f"s{n}", input=str(n)) for n in (1, 2))
    spec = ContinueAsNew(execution_id="e4" * 16, input="1", carryover_events=saved)
    [result] = hub.checkpoint([(item, decide(item, CONTINUED_AS_NEW, continue_as_new=spec))])
    assert result.committed
    assert inbox(hub, "a") == ["execution_started"] + ["event_raised"] * 5
    clock.advance(1)
    nxt = lease(hub, "a")
    names = [getattr(m.event, "name", None) for m in nxt.messages]
    assert names == ["orch", "s1", "s2", "d1", "d2", "d3"]
    assert [m.event.input for m in nxt.messages[1:3]] == ["1", "2"]  # type: ignore[attr-defined]


def test_continue_as_new_keeps_only_the_previous_execution_history(hub: TaskHub) -> None:
    start(hub, "a")
    executions = [hub.get_instance("a").execution_id]  # type: ignore[union-attr]
    for n in range(3):
        item = lease(hub, "a")
        spec = ContinueAsNew(execution_id=f"{n:032d}", input=str(n))
        [result] = hub.checkpoint([(item, decide(item, CONTINUED_AS_NEW, continue_as_new=spec))])
        assert result.committed
        executions.append(spec.execution_id)
    assert hub.get_history("a", executions[-2]) != []
    assert hub.get_history("a", executions[-3]) == []
    assert hub.get_history("a", executions[0]) == []


def test_instance_state_names_the_previous_execution(hub: TaskHub) -> None:
    start(hub, "a")
    first = step(hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    fresh = hub.get_instance("a")
    assert fresh is not None and fresh.previous_execution_id is None
    old_events = hub.get_history("a")
    hub.raise_event("a", "go", None)
    item = lease(hub, "a")
    spec = ContinueAsNew(execution_id="e3" * 16, input="1")
    [result] = hub.checkpoint([(item, decide(item, CONTINUED_AS_NEW, continue_as_new=spec))])
    assert result.committed
    state = hub.get_instance("a")
    assert state is not None
    assert (state.execution_id, state.previous_execution_id) == (spec.execution_id, first.execution_id)
    previous = hub.get_history("a", state.previous_execution_id)
    assert {r.execution_id for r in previous} == {first.execution_id}
    assert [r.event for r in previous[: len(old_events)]] == [r.event for r in old_events]
    assert previous[-1].event.kind == "continued_as_new"
    [listed] = hub.list_instances(InstanceQuery(include_payloads=False)).instances
    assert listed.previous_execution_id == first.execution_id


def test_completion_for_an_old_execution_is_never_handed_out(hub: TaskHub) -> None:
    start(hub, "a")
    step(hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    [task] = hub.lease_activities("w", None, limit=1, lease_seconds=30)
    hub.raise_event("a", "go", None)
    item = lease(hub, "a")
    spec = ContinueAsNew(execution_id="f" * 32)
    hub.checkpoint([(item, decide(item, CONTINUED_AS_NEW, continue_as_new=spec))])
    # The old execution's task row went with it: a late result is refused and lands nowhere.
    assert hub.complete_activities([ActivityResult(task, TaskCompleted(task_id=0))]) == [False]
    nxt = lease(hub, "a")
    assert inbox(hub, "a") == kinds([m.event for m in nxt.messages]) == ["execution_started"]


def test_group_commit_writes_every_item(hub: TaskHub) -> None:
    ids = [f"i{n}" for n in range(20)]
    start(hub, *ids)
    items = hub.lease_orchestrations("w", None, limit=20, lease_seconds=30)
    assert len(items) == 20
    results = hub.checkpoint([(i, decide(i, actions=[ScheduleTask(task_id=0, name="act")])) for i in items])
    assert all(r.committed for r in results)
    assert len(hub.lease_activities("w", None, limit=100, lease_seconds=30)) == 20
