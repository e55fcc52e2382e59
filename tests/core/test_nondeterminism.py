"""Code that no longer makes the calls its history recorded fails the instance, naming the task id."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

import pytest

from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import Decision
from dtctl.core.history import FAILED, ExecutionCompleted, HistoryEvent
from dtctl.core.replay import OrchestrationExecutor, execute
from dtctl.core.task import Task
from dtctl.errors import NonDeterminismError
from dtctl.testing import HistoryBuilder
from tests.core.support import MakeHistory, first_episode, kinds, next_episode

NONDETERMINISM = f"{NonDeterminismError.__module__}.{NonDeterminismError.__qualname__}"


def three_charges_then(last: Callable[[OrchestrationContext], Task[Any] | None]) -> Any:
    """Tasks 0-2 are charges; task 3 is whatever ``last`` does now."""

    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, str]:
        for amount in range(3):
            yield ctx.call_activity("charge", input=amount)
        task = last(ctx)
        if task is not None:
            yield task
        yield ctx.wait_for_external_event("never")
        return "done"

    return orchestrator


def history_with_task_3(
    h: HistoryBuilder, record: Callable[[HistoryBuilder], HistoryBuilder]
) -> tuple[list[HistoryEvent], HistoryBuilder]:
    """Tasks 0-2 charged and completed, then ``record`` says what history holds for task 3."""
    h.orchestrator_started().started().task_scheduled(0, "charge", 0)
    for task_id in (1, 2):
        next_episode(h).task_completed(task_id - 1, "ok").task_scheduled(task_id, "charge", task_id)
    record(next_episode(h).task_completed(2, "ok"))
    return h.take(), h


def _assert_fails_with(decision: Decision, message: str) -> None:
    assert decision.status == FAILED
    assert decision.failure is not None
    assert decision.failure.error_type == NONDETERMINISM
    assert decision.failure.message == message
    assert decision.actions == ()
    assert isinstance(decision.new_history[-1], ExecutionCompleted)


CASES = [
    pytest.param(
        lambda h: h.task_scheduled(3, "charge", 3),
        lambda ctx: ctx.call_activity("refund", input=3),
        "task 3: history recorded call_activity('charge') but the code now called call_activity('refund')",
        id="wrong-activity-name",
    ),
    pytest.param(
        lambda h: h.task_scheduled(3, "charge", 3),
        lambda ctx: None,
        "task 3: history recorded call_activity('charge') but the code now made no call with this task id",
        id="missing-action",
    ),
    pytest.param(
        lambda h: h.timer_created(3, timedelta(seconds=5)),
        lambda ctx: ctx.call_activity("charge", input=3),
        "task 3: history recorded create_timer() but the code now called call_activity('charge')",
        id="wrong-kind",
    ),
    pytest.param(
        lambda h: h.sub_orchestration_created(3, "ship"),
        lambda ctx: ctx.call_sub_orchestrator("invoice"),
        "task 3: history recorded call_sub_orchestrator('ship') but the code now called "
        "call_sub_orchestrator('invoice')",
        id="wrong-sub-orchestration-name",
    ),
    pytest.param(
        lambda h: h.event_sent(3, "warehouse-1", "order_paid"),
        lambda ctx: ctx.send_event("warehouse-2", "order_paid"),
        "task 3: history recorded send_event('warehouse-1', 'order_paid') but the code now called "
        "send_event('warehouse-2', 'order_paid')",
        id="wrong-send-event-target",
    ),
]


@pytest.mark.parametrize(("record", "now", "message"), CASES)
def test_a_mismatch_fails_the_instance_naming_the_task_id(
    record: Callable[[HistoryBuilder], HistoryBuilder],
    now: Callable[[OrchestrationContext], Task[Any] | None],
    message: str,
    make_history: MakeHistory,
) -> None:
    past, h = history_with_task_3(make_history(), record)
    decision = execute(three_charges_then(now), past, next_episode(h).event_raised("unrelated").take())
    _assert_fails_with(decision, message)
    # the episode's marker and the failure; the new events are not applied to broken code
    assert kinds(decision.new_history) == ["orchestrator_started", "execution_completed"]


@pytest.mark.parametrize(("record", "now", "message"), CASES)
def test_the_failure_is_final_for_a_warm_executor_too(
    record: Callable[[HistoryBuilder], HistoryBuilder],
    now: Callable[[OrchestrationContext], Task[Any] | None],
    message: str,
    make_history: MakeHistory,
) -> None:
    past, h = history_with_task_3(make_history(), record)
    executor = OrchestrationExecutor(three_charges_then(now))
    executor.execute(past, next_episode(h).take())
    later = executor.resume(next_episode(h).event_raised("never").take())
    assert (later.status, later.new_history, later.failure is not None) == (FAILED, (), True)


def test_matching_calls_replay_without_complaint(make_history: MakeHistory) -> None:
    past, h = history_with_task_3(make_history(), lambda h: h.task_scheduled(3, "charge", 3))
    decision = execute(
        three_charges_then(lambda ctx: ctx.call_activity("charge", input=3)),
        past,
        next_episode(h).task_completed(3).take(),
    )
    assert decision.failure is None


def test_a_changed_sub_orchestration_id_or_input_is_not_a_mismatch(make_history: MakeHistory) -> None:
    # like the SDK, only the kind and the name are compared for activities and sub-orchestrations
    h = make_history()
    past = first_episode(h) + h.sub_orchestration_created(0, "ship", {"v": 1}, instance_id="old-id").take()

    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        return (yield ctx.call_sub_orchestrator("ship", input={"v": 2}))

    decision = execute(orchestrator, past, next_episode(h).sub_orchestration_completed(0, "shipped").take())
    assert decision.output == '"shipped"'


def test_code_that_now_finishes_early_still_meets_its_recorded_calls(make_history: MakeHistory) -> None:
    def finishes_at_once(ctx: OrchestrationContext, _: Any) -> str:
        return "done"

    h = make_history()
    past = first_episode(h) + h.task_scheduled(0, "charge", 1).take()
    decision = execute(finishes_at_once, past, next_episode(h).task_completed(0).take())
    _assert_fails_with(
        decision,
        "task 0: history recorded call_activity('charge') but the code now made no call with this task id",
    )


def test_the_first_mismatch_is_the_one_reported(make_history: MakeHistory) -> None:
    def other_names(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        yield ctx.call_activity("a")
        yield ctx.call_activity("b")

    h = make_history()
    past = (
        first_episode(h)
        + h.task_scheduled(0, "x").take()
        + next_episode(h).task_completed(0).task_scheduled(1, "y").take()
    )
    decision = execute(other_names, past, next_episode(h).take())
    assert decision.failure is not None and decision.failure.message.startswith("task 0:")
