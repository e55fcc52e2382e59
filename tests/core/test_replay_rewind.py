"""Rewind: the rewound copy of a failed history (dtctl.core.rewind) and its replay."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import CreateTimer, ScheduleTask, StartSubOrchestration
from dtctl.core.history import COMPLETED, RUNNING, ExecutionRewound, SubOrchestrationCreated
from dtctl.core.replay import execute
from dtctl.core.rewind import plan_rewind
from dtctl.core.task import RetryPolicy, Task
from dtctl.errors import InvalidState
from tests.core.support import MakeHistory, kinds


def three_steps(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, list[str]]:
    results = []
    for step in ["one", "two", "three"]:
        results.append((yield ctx.call_activity(step, input=step)))
    return results


def _failed_at_two(make_history: MakeHistory) -> Any:
    h = make_history("three_steps")
    h.orchestrator_started().started().task_scheduled(0, "one", "one")
    h.orchestrator_started(timedelta(seconds=1)).task_completed(0, "1").task_scheduled(1, "two", "two")
    h.orchestrator_started(timedelta(seconds=1)).task_failed(1, RuntimeError("boom"))
    h.failed(RuntimeError("boom"))
    return h


def test_the_copy_drops_the_failure_and_the_failed_work_and_keeps_what_succeeded(
    make_history: MakeHistory,
) -> None:
    plan = plan_rewind(_failed_at_two(make_history).build())
    assert kinds(plan.events) == [
        "orchestrator_started",
        "execution_started",
        "task_scheduled",
        "orchestrator_started",
        "task_completed",
    ]
    assert plan.open_children == ()


def test_the_rewound_episode_schedules_only_the_failed_activity_again_with_its_task_id(
    make_history: MakeHistory,
) -> None:
    h = _failed_at_two(make_history)
    copy = plan_rewind(h.build()).history()
    new = [*make_history().orchestrator_started(timedelta(seconds=5)).rewound("fixed", "e1").build()]
    decision = execute(three_steps, copy, new)
    assert decision.status == RUNNING
    assert decision.actions == (ScheduleTask(task_id=1, name="two", input='"two"'),)
    assert kinds(decision.new_history) == ["orchestrator_started", "execution_rewound", "task_scheduled"]
    rewound = decision.new_history[1]
    assert isinstance(rewound, ExecutionRewound) and rewound.reason == "fixed"


def test_the_history_after_a_rewind_replays_deterministically_to_the_end(make_history: MakeHistory) -> None:
    h = _failed_at_two(make_history)
    copy = plan_rewind(h.build()).history()
    r = make_history("three_steps")
    r.orchestrator_started(timedelta(seconds=5)).rewound().task_scheduled(1, "two", "two")
    r.orchestrator_started(timedelta(seconds=6)).task_completed(1, "2").task_scheduled(2, "three", "three")
    past = [*copy, *r.take()]
    new = r.orchestrator_started(timedelta(seconds=7)).task_completed(2, "3").take()
    decision = execute(three_steps, past, new)
    assert decision.status == COMPLETED
    assert decision.actions == ()


def test_a_changed_call_after_a_rewind_is_still_a_mismatch(make_history: MakeHistory) -> None:
    h = _failed_at_two(make_history)
    copy = plan_rewind(h.build()).history()
    r = make_history("three_steps")
    past = [*copy, *r.orchestrator_started().rewound().task_scheduled(1, "other", "two").take()]
    decision = execute(three_steps, past, r.orchestrator_started().task_completed(1, "x").take())
    assert decision.failure is not None and "NonDeterminism" in (decision.failure.error_type or "")


def test_a_failure_the_code_got_past_is_kept(make_history: MakeHistory) -> None:
    """A retried attempt failed, the retry timer fired, the last attempt failed: only that one is rewound."""

    def retried(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=2)
        return (yield ctx.call_activity("flaky", retry_policy=policy))

    h = make_history("retried")
    past = h.orchestrator_started().started().task_scheduled(0, "flaky").take()
    new = h.orchestrator_started(timedelta(seconds=1)).task_failed(0, RuntimeError("1")).take()
    decision = execute(retried, past, new)
    h.add(decision.new_history[-1])  # the retry timer the engine created
    timer = decision.actions[0]
    assert isinstance(timer, CreateTimer)
    past = h.build()
    h.take()
    fired = h.orchestrator_started(timedelta(seconds=2)).timer_fired(timer.task_id).take()
    decision = execute(retried, past, fired)
    retry = decision.actions[0]
    assert isinstance(retry, ScheduleTask)
    h.add(decision.new_history[-1])
    h.orchestrator_started(timedelta(seconds=3)).task_failed(retry.task_id, RuntimeError("2"))
    h.failed(RuntimeError("2"))
    copy = plan_rewind(h.build()).history()
    assert kinds(copy).count("task_failed") == 1  # the first attempt's failure stays
    new = make_history().orchestrator_started(timedelta(seconds=9)).rewound().build()
    decision = execute(retried, copy, new)
    assert decision.actions == (ScheduleTask(task_id=retry.task_id, name="flaky"),)


def parent(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
    first = yield ctx.call_sub_orchestrator("child", input=1)
    timer = yield ctx.create_timer(timedelta(seconds=30))
    return first, timer


def test_a_failed_child_is_an_open_child_and_a_recreated_one_is_scheduled_again(
    make_history: MakeHistory,
) -> None:
    h = make_history("parent")
    h.orchestrator_started().started().sub_orchestration_created(0, "child", 1)
    h.orchestrator_started().sub_orchestration_failed(0, RuntimeError("child")).failed(RuntimeError("c"))
    plan = plan_rewind(h.build())
    assert [c.task_id for c in plan.open_children] == [0]
    assert isinstance(plan.history()[-1], SubOrchestrationCreated)
    new = make_history().orchestrator_started().rewound().build()
    kept = execute(parent, plan.history(), new)
    assert kept.actions == ()  # the child is rewound by the hub and reports back
    again = execute(parent, plan.history(recreate={0}), new)
    assert [type(a) for a in again.actions] == [StartSubOrchestration]


def test_a_timer_that_never_fired_is_created_again(make_history: MakeHistory) -> None:
    h = make_history("parent")
    h.orchestrator_started().started().sub_orchestration_created(0, "child", 1)
    h.orchestrator_started().sub_orchestration_completed(0, "ok").timer_created(1, timedelta(seconds=30))
    h.failed(RuntimeError("crashed by a fault of the code"))
    copy = plan_rewind(h.build()).history()
    assert "timer_created" not in kinds(copy)
    decision = execute(parent, copy, make_history().orchestrator_started().rewound().build())
    assert [type(a) for a in decision.actions] == [CreateTimer]


def test_only_a_failed_history_can_be_rewound(make_history: MakeHistory) -> None:
    h = make_history().orchestrator_started().started().completed("done")
    with pytest.raises(InvalidState):
        plan_rewind(h.build())


def test_first_mismatch_finds_where_a_changed_orchestrator_departs_from_history(
    make_history: MakeHistory,
) -> None:
    from dtctl.core.check import first_mismatch

    def renamed(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        yield ctx.call_activity("one", input="one")
        yield ctx.call_activity("deux", input="two")

    history = _failed_at_two(make_history).build()  # ends FAILED: the recorded end must not hide it
    assert first_mismatch(three_steps, history) is None
    found = first_mismatch(renamed, history)
    assert found is not None
    assert (found.task_id, found.recorded) == (1, "call_activity('two')")
    assert found.now is not None and "deux" in found.now
