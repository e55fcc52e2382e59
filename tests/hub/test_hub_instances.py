"""Conformance: creating instances, messages from clients, terminate, suspend/resume."""

from __future__ import annotations

import pytest

from dtctl.core.decision import ScheduleTask, StartSubOrchestration
from dtctl.core.history import (
    COMPLETED,
    PENDING,
    RUNNING,
    TERMINATED,
    EventRaised,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    SubOrchestrationFailed,
)
from dtctl.errors import InstanceAlreadyExists, InstanceNotFound, InvalidState
from dtctl.hub.base import CreateOutcome, NewInstance, TaskHub, TerminateOutcome
from tests.hub.conftest import StepClock
from tests.hub.hub_helpers import ORCH, kinds, lease, start, step


def events_of(hub: TaskHub, instance_id: str) -> list[str]:
    return kinds([m.event for m in hub.pending_messages(instance_id)])


def finish(hub: TaskHub, instance_id: str, status: str = COMPLETED, output: str | None = '"ok"') -> None:
    step(hub, instance_id, status, output=output)


# --- create ------------------------------------------------------------------------------------------


def test_create_makes_a_pending_instance_with_its_start_event(hub: TaskHub, clock: StepClock) -> None:
    outcomes = hub.create_instances([NewInstance(instance_id="a", name=ORCH, input='{"x":1}')])
    assert outcomes == [CreateOutcome("a", True)]
    state = hub.get_instance("a")
    assert state is not None
    assert (state.status, state.name, state.input, state.history_length) == (PENDING, ORCH, '{"x":1}', 0)
    assert state.created_at == state.updated_at == clock()
    assert len(state.execution_id) == 32
    [message] = hub.pending_messages("a")
    assert isinstance(message.event, ExecutionStarted)
    assert (message.event.execution_id, message.event.input, message.event.name) == (
        state.execution_id,
        '{"x":1}',
        ORCH,
    )


def test_get_missing_instance_is_none(hub: TaskHub) -> None:
    assert hub.get_instance("nope") is None


def test_duplicate_id_fails_and_the_whole_batch_is_refused(hub: TaskHub) -> None:
    start(hub, "a")
    batch = [NewInstance(instance_id="b", name=ORCH), NewInstance(instance_id="a", name=ORCH)]
    with pytest.raises(InstanceAlreadyExists, match="'a'"):
        hub.create_instances(batch)
    assert hub.get_instance("b") is None


def test_duplicate_id_inside_one_batch_fails(hub: TaskHub) -> None:
    with pytest.raises(InstanceAlreadyExists):
        hub.create_instances(
            [NewInstance(instance_id="a", name=ORCH), NewInstance(instance_id="a", name=ORCH)]
        )
    assert hub.get_instance("a") is None


def test_a_terminal_id_is_refused_without_replace(hub: TaskHub) -> None:
    start(hub, "a")
    finish(hub, "a")
    with pytest.raises(InstanceAlreadyExists, match="COMPLETED"):
        start(hub, "a")


def test_skip_leaves_the_existing_instance(hub: TaskHub) -> None:
    start(hub, "a", input='"first"')
    outcomes = hub.create_instances(
        [NewInstance(instance_id="a", name=ORCH, input='"second"'), NewInstance(instance_id="b", name=ORCH)],
        if_exists="skip",
    )
    assert outcomes == [CreateOutcome("a", False), CreateOutcome("b", True)]
    state = hub.get_instance("a")
    assert state is not None and state.input == '"first"'
    assert len(hub.pending_messages("a")) == 1


def test_replace_refuses_a_live_instance(hub: TaskHub) -> None:
    start(hub, "a")
    with pytest.raises(InstanceAlreadyExists, match="PENDING"):
        hub.create_instances([NewInstance(instance_id="a", name=ORCH)], if_exists="replace")


def test_replace_removes_every_trace_of_the_finished_instance(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a", input='"old"')
    step(hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    old = hub.get_instance("a")
    assert old is not None
    hub.raise_event("a", "go", None)
    finish(hub, "a")
    hub.raise_event("a", "late", None, force=True)  # a leftover inbox row
    assert hub.get_history("a") and hub.pending_messages("a")
    clock.advance(1)
    outcomes = hub.create_instances(
        [NewInstance(instance_id="a", name="other", input='"new"')], if_exists="replace"
    )
    assert outcomes == [CreateOutcome("a", True)]
    new = hub.get_instance("a")
    assert new is not None
    assert (new.status, new.name, new.input, new.output, new.history_length) == (
        PENDING,
        "other",
        '"new"',
        None,
        0,
    )
    assert new.execution_id != old.execution_id
    assert new.created_at == clock()
    assert hub.get_history("a") == []
    assert hub.get_history("a", old.execution_id) == []
    assert hub.pending_activities("a") == []
    assert events_of(hub, "a") == ["execution_started"]


def test_scheduled_start_is_invisible_until_due(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "later", start_at=clock() + 60_000_000)
    state = hub.get_instance("later")
    assert state is not None and state.scheduled_start == clock() + 60_000_000
    assert hub.lease_orchestrations("w", None, limit=10, lease_seconds=30) == []
    clock.advance(59.999)
    assert hub.lease_orchestrations("w", None, limit=10, lease_seconds=30) == []
    clock.advance(0.001)
    [item] = hub.lease_orchestrations("w", None, limit=10, lease_seconds=30)
    assert item.instance_id == "later"


# --- raise_event / suspend / resume ------------------------------------------------------------------------


def test_raise_event_queues_an_untagged_event(hub: TaskHub) -> None:
    start(hub, "a")
    hub.raise_event("a", "approval", '{"ok":true}')
    messages = hub.pending_messages("a")
    assert kinds([m.event for m in messages]) == ["execution_started", "event_raised"]
    event = messages[1].event
    assert isinstance(event, EventRaised) and (event.name, event.input) == ("approval", '{"ok":true}')


def test_raise_event_on_a_missing_instance_is_not_found(hub: TaskHub) -> None:
    with pytest.raises(InstanceNotFound, match="no instance 'ghost' in hub"):
        hub.raise_event("ghost", "e", None)


def test_raise_event_on_a_terminal_instance_is_refused_unless_forced(hub: TaskHub) -> None:
    start(hub, "a")
    finish(hub, "a")
    with pytest.raises(InvalidState, match="COMPLETED"):
        hub.raise_event("a", "e", None)
    assert hub.pending_messages("a") == []
    hub.raise_event("a", "e", None, force=True)
    assert events_of(hub, "a") == ["event_raised"]


def test_suspend_and_resume_enqueue_messages(hub: TaskHub) -> None:
    start(hub, "a")
    step(hub, "a")
    hub.suspend("a", "hold on")
    hub.resume("a", "go")
    events = [m.event for m in hub.pending_messages("a")]
    assert isinstance(events[0], ExecutionSuspended) and events[0].reason == "hold on"
    assert isinstance(events[1], ExecutionResumed) and events[1].reason == "go"
    state = hub.get_instance("a")
    assert state is not None and state.status == RUNNING  # the checkpoint writes SUSPENDED, not the client


def test_suspend_is_written_by_the_checkpoint(hub: TaskHub) -> None:
    start(hub, "a")
    step(hub, "a")
    hub.suspend("a", None)
    step(hub, "a", "SUSPENDED")
    state = hub.get_instance("a")
    assert state is not None and state.status == "SUSPENDED"


@pytest.mark.parametrize("operation", ["suspend", "resume"])
def test_suspend_resume_errors(hub: TaskHub, operation: str) -> None:
    with pytest.raises(InstanceNotFound):
        getattr(hub, operation)("ghost", None)
    start(hub, "a")
    finish(hub, "a")
    with pytest.raises(InvalidState):
        getattr(hub, operation)("a", None)


# --- terminate -----------------------------------------------------------------------------------------


def test_terminate_missing_is_not_found(hub: TaskHub) -> None:
    with pytest.raises(InstanceNotFound):
        hub.terminate("ghost", None)


def test_terminate_a_pending_unleased_instance_ends_it_at_once(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    clock.advance(1)
    outcome = hub.terminate("a", "no longer needed")
    assert outcome == TerminateOutcome("a", True, TERMINATED)
    state = hub.get_instance("a")
    assert state is not None
    assert (state.status, state.completed_at) == (TERMINATED, clock())
    assert state.output is not None and "no longer needed" in state.output
    assert hub.pending_messages("a") == []
    assert hub.lease_orchestrations("w", None, limit=10, lease_seconds=30) == []


def test_terminate_a_running_instance_enqueues_one_event(hub: TaskHub) -> None:
    start(hub, "a")
    step(hub, "a")
    outcome = hub.terminate("a", "stop")
    assert outcome == TerminateOutcome("a", True, RUNNING)
    hub.terminate("a", "stop again")  # deduplicated: one ExecutionTerminated is enough
    messages = hub.pending_messages("a")
    assert kinds([m.event for m in messages]) == ["execution_terminated"]
    event = messages[0].event
    assert isinstance(event, ExecutionTerminated) and event.reason == "stop"
    step(hub, "a", TERMINATED, output='"stop"')
    state = hub.get_instance("a")
    assert state is not None and state.status == TERMINATED


def test_terminate_a_leased_pending_instance_goes_through_the_inbox(hub: TaskHub) -> None:
    start(hub, "a")
    item = lease(hub, "a")
    outcome = hub.terminate("a", None)
    assert outcome == TerminateOutcome("a", True, PENDING)
    assert events_of(hub, "a") == ["execution_started", "execution_terminated"]
    hub.abandon_orchestration(item)


def test_terminate_a_terminal_instance_says_so(hub: TaskHub) -> None:
    start(hub, "a")
    finish(hub, "a", "FAILED", output=None)
    assert hub.terminate("a", None) == TerminateOutcome("a", False, "FAILED")
    assert hub.pending_messages("a") == []


def test_terminate_recursive_reaches_every_live_descendant(hub: TaskHub) -> None:
    start(hub, "root")
    step(hub, "root", actions=[StartSubOrchestration(task_id=0, name="child", instance_id="c1")])
    step(hub, "c1", actions=[StartSubOrchestration(task_id=0, name="child", instance_id="c2")])
    # c2 stays PENDING (never leased): terminated at once; root and c1 get an ExecutionTerminated.
    outcome = hub.terminate("root", "stop all", recursive=True)
    assert outcome.terminated
    assert events_of(hub, "root") == ["execution_terminated"]
    assert "execution_terminated" in events_of(hub, "c1")
    c2 = hub.get_instance("c2")
    assert c2 is not None and c2.status == TERMINATED
    # c1, the parent of c2, hears that its sub-orchestration was terminated.
    failures = [m.event for m in hub.pending_messages("c1") if isinstance(m.event, SubOrchestrationFailed)]
    assert len(failures) == 1 and failures[0].task_id == 0 and "terminated" in failures[0].failure.message


def test_terminate_not_recursive_leaves_children(hub: TaskHub) -> None:
    start(hub, "root")
    step(hub, "root", actions=[StartSubOrchestration(task_id=0, name="child", instance_id="c1")])
    hub.terminate("root", None, recursive=False)
    c1 = hub.get_instance("c1")
    assert c1 is not None and c1.status == PENDING
    assert events_of(hub, "c1") == ["execution_started"]
