"""Suspend, resume, terminate, continue-as-new, custom status, failures, and recorded ends."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

import pytest

from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import ScheduleTask
from dtctl.core.history import (
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    RUNNING,
    SUSPENDED,
    TERMINATED,
    ContinuedAsNew,
    EventRaised,
    ExecutionCompleted,
    HistoryEvent,
)
from dtctl.core.replay import OrchestrationExecutor, execute
from dtctl.core.task import Task, when_any
from dtctl.testing import HistoryBuilder
from tests.core.support import MakeHistory, charge, first_episode, kinds, next_episode


def two_steps(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, list[Any]]:
    first = yield ctx.call_activity(charge, input=1)
    second = yield ctx.call_activity(charge, input=2)
    return [first, second]


def _running_two_steps(h: HistoryBuilder) -> list[HistoryEvent]:
    return first_episode(h) + h.task_scheduled(0, "charge", 1).take()


def test_suspended_instances_hold_completions_until_resumed(make_history: MakeHistory) -> None:
    h = make_history()
    past = _running_two_steps(h)
    suspended = execute(
        two_steps, past, next_episode(h).suspended("maintenance").task_completed(0, "a").take()
    )
    assert (suspended.status, suspended.actions) == (SUSPENDED, ())
    assert kinds(suspended.new_history) == ["orchestrator_started", "execution_suspended", "task_completed"]
    past += list(suspended.new_history)
    resumed = execute(two_steps, past, next_episode(h).resumed().take())
    assert resumed.status == RUNNING
    assert resumed.actions == (ScheduleTask(task_id=1, name="charge", input="2"),)


def test_suspend_and_resume_with_nothing_held(make_history: MakeHistory) -> None:
    h = make_history()
    past = _running_two_steps(h)
    decision = execute(two_steps, past, next_episode(h).suspended().resumed().resumed().take())
    assert (decision.status, decision.actions) == (RUNNING, ())


def test_terminate_ends_the_execution_with_the_reason_as_output(make_history: MakeHistory) -> None:
    h = make_history()
    past = _running_two_steps(h)
    new = (
        next_episode(h).task_completed(0, "a").terminated("customer cancelled").task_completed(1, "x").take()
    )
    decision = execute(two_steps, past, new)
    assert decision.status == TERMINATED
    assert decision.output == '"customer cancelled"'
    assert decision.actions == ()  # the activity the completion asked for does not go out
    assert kinds(decision.new_history) == [
        "orchestrator_started",
        "task_completed",
        "execution_terminated",
        "execution_completed",
    ]
    final = decision.new_history[-1]
    assert final == ExecutionCompleted(timestamp=h.now, status=TERMINATED, result='"customer cancelled"')


def test_terminate_works_while_suspended(make_history: MakeHistory) -> None:
    h = make_history()
    past = _running_two_steps(h)
    decision = execute(
        two_steps, past, next_episode(h).suspended().task_completed(0, "a").terminated().take()
    )
    assert (decision.status, decision.output, decision.actions) == (TERMINATED, None, ())


def test_a_recorded_end_repeats_with_nothing_new(make_history: MakeHistory) -> None:
    h = make_history()
    past = _running_two_steps(h) + next_episode(h).terminated("stop").take()
    past += h.completed("ignored").take()  # hand-made: the recorded end is the truth
    decision = execute(two_steps, past, next_episode(h).task_completed(0, "late").take())
    assert (decision.status, decision.output, decision.new_history) == (COMPLETED, '"ignored"', ())


def test_recorded_failure_and_continued_as_new_are_the_truth(make_history: MakeHistory) -> None:
    h = make_history()
    failed = _running_two_steps(h) + h.failed(ValueError("old bug")).take()
    decision = execute(two_steps, failed, next_episode(h).take())
    assert decision.status == FAILED and decision.failure is not None
    assert decision.failure.error_type == "builtins.ValueError"
    h2 = make_history()
    moved_on = _running_two_steps(h2) + h2.continued_as_new(5, "execution-2").take()
    decision = execute(two_steps, moved_on, next_episode(h2).take())
    assert decision.status == CONTINUED_AS_NEW
    assert decision.continue_as_new is not None
    assert (decision.continue_as_new.execution_id, decision.continue_as_new.input) == ("execution-2", "5")


def test_generic_events_are_ignored(make_history: MakeHistory) -> None:
    h = make_history()
    past = _running_two_steps(h) + h.generic("wake up").take()
    decision = execute(two_steps, past, next_episode(h).generic().take())
    assert (decision.status, decision.actions) == (RUNNING, ())
    assert kinds(decision.new_history) == ["orchestrator_started", "generic"]


def counter(ctx: OrchestrationContext, count: int) -> Generator[Task[Any], Any, int]:
    if count >= 2:
        return count
    yield ctx.create_timer(timedelta(seconds=1))
    ctx.continue_as_new(count + 1, save_events=count == 1)
    return -1  # ignored: continue_as_new wins


def test_continue_as_new_starts_a_new_execution_with_a_deterministic_id(make_history: MakeHistory) -> None:
    h = make_history("counter")
    past = first_episode(h, 0) + h.timer_created(0, timedelta(seconds=1)).take()
    new = next_episode(h).timer_fired(0).event_raised("late", 1).take()
    decision = execute(counter, past, new)
    assert decision.status == CONTINUED_AS_NEW
    assert decision.continue_as_new is not None
    assert decision.continue_as_new.input == "1"
    assert decision.continue_as_new.carryover_events == ()  # save_events=False
    assert decision.continue_as_new.execution_id not in ("", "execution-1")
    assert decision == execute(counter, past, new)  # the same id on every re-run of the episode
    final = decision.new_history[-1]
    assert isinstance(final, ContinuedAsNew)
    assert (final.input, final.new_execution_id) == ("1", decision.continue_as_new.execution_id)
    assert kinds(decision.new_history) == ["orchestrator_started", "timer_fired", "continued_as_new"]


def test_continue_as_new_with_save_events_carries_unconsumed_events(make_history: MakeHistory) -> None:
    h = make_history("counter")
    past = first_episode(h, 1) + h.event_raised("early", "a").timer_created(0, timedelta(seconds=1)).take()
    new = next_episode(h).timer_fired(0).event_raised("later", "b").generic().take()
    decision = execute(counter, past, new)
    assert decision.continue_as_new is not None
    carried = decision.continue_as_new.carryover_events
    assert [(e.name, e.input) for e in carried if isinstance(e, EventRaised)] == [
        ("early", '"a"'),
        ("later", '"b"'),
    ]
    assert len(carried) == 2


def test_a_plain_function_may_continue_as_new(make_history: MakeHistory) -> None:
    def again(ctx: OrchestrationContext, n: int) -> None:
        ctx.continue_as_new(n + 1)

    decision = execute(again, [], first_episode(make_history(), 1))
    assert decision.status == CONTINUED_AS_NEW
    assert decision.continue_as_new is not None and decision.continue_as_new.input == "2"


def test_custom_status_is_the_latest_value_set(make_history: MakeHistory) -> None:
    def statuses(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        ctx.set_custom_status("charging")
        yield ctx.call_activity(charge, input=1)
        ctx.set_custom_status({"step": 2})
        yield ctx.call_activity(charge, input=2)

    h = make_history()
    first = execute(statuses, [], first_episode(h))
    assert first.custom_status == '"charging"'
    past = h.build() + list(first.new_history[2:])
    second = execute(statuses, past, next_episode(h).task_completed(0).take())
    assert second.custom_status == '{"step":2}'


def test_an_unhandled_exception_fails_with_its_details(make_history: MakeHistory) -> None:
    def broken(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        yield ctx.call_activity(charge, input=1)
        raise KeyError("missing sku")

    h = make_history()
    decision = execute(broken, _running_two_steps(h), next_episode(h).task_completed(0).take())
    assert decision.status == FAILED
    assert decision.failure is not None
    assert decision.failure.error_type == "builtins.KeyError"
    assert decision.failure.is_caused_by(LookupError)
    assert decision.failure.stack_trace is not None and "missing sku" in decision.failure.stack_trace
    assert decision.output is None


def test_yielding_something_that_is_not_a_task_fails_clearly(make_history: MakeHistory) -> None:
    def wrong(ctx: OrchestrationContext, _: Any) -> Generator[Any, Any, None]:
        yield 42

    decision = execute(wrong, [], first_episode(make_history()))
    assert decision.status == FAILED
    assert decision.failure is not None
    assert decision.failure.message == (
        "an orchestrator must yield durable tasks (call_activity, create_timer, when_all, ...); "
        "it yielded a int"
    )


def test_async_orchestrators_are_refused_clearly(make_history: MakeHistory) -> None:
    async def not_a_generator(ctx: OrchestrationContext, _: Any) -> None:
        return None

    decision = execute(not_a_generator, [], first_episode(make_history()))
    assert decision.status == FAILED
    assert decision.failure is not None and "not async def" in decision.failure.message


def test_an_output_that_is_not_json_fails_the_orchestration(make_history: MakeHistory) -> None:
    def returns_a_set(ctx: OrchestrationContext, _: Any) -> set[int]:
        return {1}

    decision = execute(returns_a_set, [], first_episode(make_history("sets")))
    assert decision.status == FAILED
    assert decision.failure is not None and decision.failure.error_type == "dtctl.errors.PayloadError"
    assert "the output of orchestration 'returns_a_set'" in decision.failure.message


def test_a_second_execution_started_changes_nothing(make_history: MakeHistory) -> None:
    h = make_history()
    new = first_episode(h) + h.started().take()
    decision = execute(two_steps, [], new)
    assert decision.actions == (ScheduleTask(task_id=0, name="charge", input="1"),)


def test_execute_starts_over_and_status_follows_the_episode(make_history: MakeHistory) -> None:
    h = make_history()
    executor = OrchestrationExecutor(two_steps)
    executor.execute([], next_episode(h).suspended().take())
    assert executor.status == SUSPENDED
    executor.execute([], first_episode(make_history()))
    assert (executor.status, executor.is_finished, executor.context.instance_id) == (
        RUNNING,
        False,
        "order-1",
    )


def waits_for_anything(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, int]:
    work = ctx.call_activity(charge, input=1)  # task 0
    timer = ctx.create_timer(timedelta(seconds=5))  # task 1
    child = ctx.call_sub_orchestrator("child")  # task 2
    event = ctx.wait_for_external_event("go")
    winner = yield when_any([work, timer, child, event])
    return [work, timer, child, event].index(winner)


MESSAGES = [
    pytest.param(lambda h: h.task_completed(0, "ok"), 0, id="task_completed"),
    pytest.param(lambda h: h.task_failed(0, ValueError("no")), 0, id="task_failed"),
    pytest.param(lambda h: h.timer_fired(1), 1, id="timer_fired"),
    pytest.param(lambda h: h.sub_orchestration_completed(2, "ok"), 2, id="sub_orchestration_completed"),
    pytest.param(lambda h: h.sub_orchestration_failed(2, KeyError("k")), 2, id="sub_orchestration_failed"),
    pytest.param(lambda h: h.event_raised("GO", 1), 3, id="event_raised"),
]


@pytest.mark.parametrize(("message", "winner"), MESSAGES)
def test_every_message_kind_waits_while_suspended_and_arrives_on_resume(
    make_history: MakeHistory, message: Callable[[HistoryBuilder], HistoryBuilder], winner: int
) -> None:
    h = make_history()
    past = first_episode(h) + h.task_scheduled(0, "charge", 1).timer_created(1, timedelta(seconds=5)).take()
    past += h.sub_orchestration_created(2, "child").take()
    executor = OrchestrationExecutor(waits_for_anything)
    held_episode = message(next_episode(h).suspended()).take()
    held = executor.execute(past, held_episode)
    assert held == execute(waits_for_anything, past, held_episode)
    assert (held.status, held.output, held.actions) == (SUSPENDED, None, ())
    past += list(held.new_history)
    resumed = executor.resume(next_episode(h).resumed().take())
    assert (resumed.status, resumed.output) == (COMPLETED, str(winner))
