"""Replay of entity calls, signals and critical sections: build a history, replay it, check the decision."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from dtctl.core.context import OrchestrationContext
from dtctl.core.critical_section import EntityOperationFailedException
from dtctl.core.decision import CallEntity, LockEntities, ScheduleTask, SignalEntity, UnlockEntities
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.history import COMPLETED, FAILED, RUNNING, SUSPENDED, TERMINATED, EntityUnlockSent
from dtctl.core.replay import OrchestrationExecutor, execute
from dtctl.core.task import Task, TaskFailedError
from dtctl.errors import NonDeterminismError, OrchestrationStateError
from tests.core.support import MakeHistory, first_episode, kinds, next_episode

A = EntityInstanceId("Account", "a")
B = EntityInstanceId("Account", "b")
C = EntityInstanceId("Counter", "c")
NONDETERMINISM = f"{NonDeterminismError.__module__}.{NonDeterminismError.__qualname__}"

Gen = Generator[Task[Any], Any, Any]


def add_one(ctx: OrchestrationContext, _: Any) -> Gen:
    total = yield ctx.call_entity(C, "add", 1)
    return total


def test_call_entity_schedules_a_call_and_completes_with_its_result(make_history: MakeHistory) -> None:
    h = make_history("add_one")
    start = first_episode(h)
    decision = execute(add_one, [], start)
    assert decision.actions == (CallEntity(task_id=0, entity_id="@counter@c", operation="add", input="1"),)
    assert kinds(decision.new_history)[-1] == "entity_operation_called"
    past = start + h.entity_operation_called(0, C, "add", 1).take()
    decision = execute(add_one, past, next_episode(h).entity_operation_completed(0, 5).take())
    assert (decision.status, decision.output) == (COMPLETED, "5")


def test_a_failed_operation_raises_to_the_caller(make_history: MakeHistory) -> None:
    seen: list[Any] = []

    def careful(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_entity(C, "add", 1)
        except TaskFailedError as error:
            seen.append(error)
            return "handled"

    h = make_history("careful")
    past = h.orchestrator_started().started().entity_operation_called(0, C, "add", 1).take()
    decision = execute(careful, past, next_episode(h).entity_operation_failed(0, ValueError("boom")).take())
    assert decision.status == COMPLETED
    (error,) = seen
    assert isinstance(error, EntityOperationFailedException)
    assert (
        error.details.is_caused_by(ValueError)
        and error.operation_name == "add"
        and error.entity_instance_id == C
    )
    assert str(error) == "Operation 'add' on entity '@counter@c' failed with error: boom"


def test_signal_entity_is_one_way_and_may_be_delayed(make_history: MakeHistory) -> None:
    def nudge(ctx: OrchestrationContext, _: Any) -> Gen:
        ctx.signal_entity(C, "reset")
        ctx.signal_entity("@counter@c", "add", 2, signal_time=timedelta(minutes=1))
        yield ctx.create_timer(timedelta(hours=1))

    h = make_history("nudge")
    start = first_episode(h)
    decision = execute(nudge, [], start)
    soon = h.now + 60_000_000
    assert decision.actions[:2] == (
        SignalEntity(task_id=0, entity_id="@counter@c", operation="reset"),
        SignalEntity(task_id=1, entity_id="@counter@c", operation="add", input="2", fire_at=soon),
    )
    h.entity_operation_signaled(0, C, "reset").entity_operation_signaled(
        1, C, "add", 2, fire_at=timedelta(minutes=1)
    )
    h.timer_created(2, timedelta(hours=1))
    assert execute(nudge, start + h.take(), next_episode(h).take()).actions == ()


def transfer(ctx: OrchestrationContext, amount: int) -> Gen:
    with (yield ctx.lock_entities([B, A, B])):
        assert ctx.is_in_critical_section() and ctx.get_locked_entities() == [A, B]
        yield ctx.call_entity(A, "withdraw", amount)
        yield ctx.call_entity(B, "deposit", amount)
    assert not ctx.is_in_critical_section()
    return "moved"


def _locked(h: Any) -> list[Any]:
    h.orchestrator_started().started(5).entity_lock_requested(0, [A, B])
    return h.take()


def test_lock_entities_asks_for_the_sorted_set_and_the_with_block_releases_it(
    make_history: MakeHistory,
) -> None:
    h = make_history("transfer")
    decision = execute(transfer, [], first_episode(h, 5))
    section = h.new_uuid(0)
    assert decision.actions == (
        LockEntities(task_id=0, critical_section_id=section, entity_ids=("@account@a", "@account@b")),
    )
    h = make_history("transfer")
    past = _locked(h)
    past += next_episode(h).entity_lock_granted(0).entity_operation_called(1, A, "withdraw", 5).take()
    past += next_episode(h).entity_operation_completed(1).entity_operation_called(2, B, "deposit", 5).take()
    decision = execute(transfer, past, next_episode(h).entity_operation_completed(2).take())
    assert decision.status == COMPLETED
    assert decision.actions == (
        UnlockEntities(task_id=3, critical_section_id=section, entity_ids=(str(A), str(B))),
    )
    assert kinds(decision.new_history)[-2:] == ["entity_unlock_sent", "execution_completed"]
    # and the recorded history replays to the same end, sending nothing again
    h.add(decision.new_history[-2]).completed("moved")
    assert execute(transfer, past + h.take(), []).actions == ()


@pytest.mark.parametrize(
    ("ending", "status"),
    [("fail", FAILED), ("return", COMPLETED), ("continue", "CONTINUED_AS_NEW"), ("terminate", TERMINATED)],
)
def test_an_execution_that_ends_inside_a_critical_section_releases_its_locks(
    make_history: MakeHistory, ending: str, status: str
) -> None:
    def holder(ctx: OrchestrationContext, _: Any) -> Gen:
        lock = yield ctx.lock_entities([A, B])
        lock.__enter__()  # entered and never left
        yield ctx.call_entity(A, "get")
        if ending == "fail":
            raise RuntimeError("crash inside the section")
        if ending == "continue":
            ctx.continue_as_new(1)
        if ending in ("continue", "terminate"):
            yield ctx.wait_for_external_event("never")
        return "left holding"

    h = make_history("holder")
    section = h.new_uuid(0)
    past = _locked(h) + next_episode(h).entity_lock_granted(0).entity_operation_called(1, A, "get").take()
    new = next_episode(h).entity_operation_completed(1, 0).take()
    if ending == "terminate":
        new += h.terminated("stop").take()
    decision = execute(holder, past, new)
    assert decision.status == status
    unlock = UnlockEntities(task_id=2, critical_section_id=section, entity_ids=(str(A), str(B)))
    assert decision.actions == (unlock,)
    assert isinstance(decision.new_history[-2], EntityUnlockSent)
    assert kinds(decision.new_history)[-1] in ("execution_completed", "continued_as_new")


def _in_section(rule: Any) -> Any:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Gen:
        with (yield ctx.lock_entities([A])):
            yield from rule(ctx)
        return "done"

    return orchestrator


def _rule_call_other(ctx: OrchestrationContext) -> Gen:
    yield ctx.call_entity(C, "add")


def _rule_nested_lock(ctx: OrchestrationContext) -> Gen:
    yield ctx.lock_entities([C])


def _rule_sub_orchestration(ctx: OrchestrationContext) -> Gen:
    yield ctx.call_sub_orchestrator("child")


def _rule_signal_locked(ctx: OrchestrationContext) -> Gen:
    ctx.signal_entity(A, "poke")
    yield ctx.create_timer(timedelta(seconds=1))


def _rule_two_calls(ctx: OrchestrationContext) -> Gen:
    first = ctx.call_entity(A, "get")
    second = ctx.call_entity(A, "get")
    yield first
    yield second


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (_rule_call_other, "if it is not one of the locked entities"),
        (_rule_nested_lock, "must not enter another critical section"),
        (_rule_sub_orchestration, "cannot call sub-orchestrators"),
        (_rule_signal_locked, "must not signal a locked entity"),
        (_rule_two_calls, "while a prior call to the same entity is still pending"),
    ],
)
def test_the_sdk_rules_inside_a_critical_section(make_history: MakeHistory, rule: Any, message: str) -> None:
    h = make_history()
    past = h.orchestrator_started().started().entity_lock_requested(0, [A]).take()
    decision = execute(_in_section(rule), past, next_episode(h).entity_lock_granted(0).take())
    assert decision.status == FAILED and decision.failure is not None
    assert decision.failure.is_caused_by(OrchestrationStateError)
    assert message in decision.failure.message
    assert isinstance(decision.actions[-1], UnlockEntities)  # the failed holder still lets go


def test_calling_before_the_lock_is_granted_is_refused(make_history: MakeHistory) -> None:
    def eager(ctx: OrchestrationContext, _: Any) -> Gen:
        ctx.lock_entities([A])
        yield ctx.call_entity(A, "get")

    decision = execute(eager, [], first_episode(make_history()))
    assert decision.status == FAILED and decision.failure is not None
    assert "must await the completion of the lock request" in decision.failure.message


def test_lock_entities_needs_entities(make_history: MakeHistory) -> None:
    def empty(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.lock_entities([])

    decision = execute(empty, [], first_episode(make_history()))
    assert decision.failure is not None and "at least one entity" in decision.failure.message
    assert decision.actions == ()  # nothing to release


def test_a_recorded_entity_call_that_the_code_no_longer_makes_fails_naming_the_task(
    make_history: MakeHistory,
) -> None:
    def now_an_activity(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity("add", input=1)

    h = make_history()
    past = h.orchestrator_started().started().entity_operation_called(0, C, "add", 1).take()
    decision = execute(now_an_activity, past, next_episode(h).entity_operation_completed(0, 1).take())
    assert decision.status == FAILED and decision.failure is not None
    assert decision.failure.error_type == NONDETERMINISM
    assert decision.failure.message == (
        "task 0: history recorded call_entity('@counter@c', 'add') "
        "but the code now called call_activity('add')"
    )


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (lambda h: h.entity_operation_called(0, C, "subtract", 1), "call_entity('@counter@c', 'subtract')"),
        (lambda h: h.entity_operation_signaled(0, C, "add", 1), "signal_entity('@counter@c', 'add')"),
        (lambda h: h.entity_lock_requested(0, [C]), "lock_entities(['@counter@c'])"),
        (lambda h: h.task_scheduled(0, "add", 1), "call_activity('add')"),
    ],
)
def test_every_entity_action_is_checked_against_history(
    make_history: MakeHistory, record: Any, expected: str
) -> None:
    h = make_history("add_one")
    past = record(h.orchestrator_started().started()).take()
    decision = execute(add_one, past, next_episode(h).take())
    assert decision.status == FAILED and decision.failure is not None
    assert decision.failure.message.startswith(f"task 0: history recorded {expected} but the code now")


def test_a_different_lock_set_is_a_mismatch(make_history: MakeHistory) -> None:
    h = make_history("transfer")
    past = h.orchestrator_started().started(5).entity_lock_requested(0, [A]).take()
    decision = execute(transfer, past, next_episode(h).take())
    assert decision.failure is not None and decision.failure.error_type == NONDETERMINISM
    assert "lock_entities(['@account@a'])" in decision.failure.message


def test_entity_responses_wait_while_the_instance_is_suspended(make_history: MakeHistory) -> None:
    h = make_history("add_one")
    executor = OrchestrationExecutor(add_one)
    past = h.orchestrator_started().started().entity_operation_called(0, C, "add", 1).take()
    decision = executor.execute(past, next_episode(h).suspended().entity_operation_completed(0, 3).take())
    assert decision.status == SUSPENDED
    decision = executor.resume(next_episode(h).resumed().take())
    assert (decision.status, decision.output) == (COMPLETED, "3")


def test_the_warm_path_decides_what_a_fresh_replay_decides(make_history: MakeHistory) -> None:
    h = make_history("transfer")
    executor = OrchestrationExecutor(transfer)
    d1 = executor.execute([], first_episode(h, 5))
    section = h.new_uuid(0)  # derived at the first episode's time
    grant = next_episode(h).entity_lock_granted(0, critical_section_id=section).take()
    warm = executor.resume(grant)
    fresh = execute(transfer, [*d1.new_history], grant)
    assert warm == fresh
    assert warm.actions == (CallEntity(task_id=1, entity_id=str(A), operation="withdraw", input="5"),)


def test_a_grant_for_another_section_is_ignored(make_history: MakeHistory) -> None:
    h = make_history("transfer")
    past = _locked(h)
    decision = execute(
        transfer, past, next_episode(h).entity_lock_granted(0, critical_section_id="other").take()
    )
    assert decision.status == RUNNING and decision.actions == ()


def test_activities_may_run_inside_a_critical_section(make_history: MakeHistory) -> None:
    def audited(ctx: OrchestrationContext, _: Any) -> Gen:
        with (yield ctx.lock_entities([A])):
            yield ctx.call_activity("audit")
        return None

    h = make_history()
    past = h.orchestrator_started().started().entity_lock_requested(0, [A]).take()
    decision = execute(audited, past, next_episode(h).entity_lock_granted(0).take())
    assert decision.actions == (ScheduleTask(task_id=1, name="audit"),)
