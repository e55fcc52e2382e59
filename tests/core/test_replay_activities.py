"""Replay of activities, timers, when_all / when_any: scheduling, completion, failure, duplicates."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import CreateTimer, ScheduleTask
from dtctl.core.history import COMPLETED, FAILED, RUNNING, ExecutionCompleted, TaskScheduled
from dtctl.core.replay import OrchestrationExecutor, execute
from dtctl.core.task import Task, TaskFailedError, when_all, when_any
from tests.core.support import MakeHistory, charge, first_episode, kinds, next_episode, refund


def hello_cities(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, list[str]]:
    results = []
    for city in ["Tokyo", "Seattle", "London"]:
        results.append((yield ctx.call_activity("say_hello", input=city)))
    return results


def test_first_episode_schedules_the_first_activity(make_history: MakeHistory) -> None:
    h = make_history("hello_cities")
    decision = execute(hello_cities, [], first_episode(h))
    assert decision.status == RUNNING
    assert decision.actions == (ScheduleTask(task_id=0, name="say_hello", input='"Tokyo"'),)
    assert kinds(decision.new_history) == ["orchestrator_started", "execution_started", "task_scheduled"]
    scheduled = decision.new_history[-1]
    assert isinstance(scheduled, TaskScheduled)
    assert scheduled.timestamp == h.now  # stamped with the episode's time


def test_a_completion_resumes_the_code_and_schedules_the_next_activity(make_history: MakeHistory) -> None:
    h = make_history("hello_cities")
    past = first_episode(h) + h.task_scheduled(0, "say_hello", "Tokyo").take()
    new = next_episode(h).task_completed(0, "Hello Tokyo!").take()
    decision = execute(hello_cities, past, new)
    assert decision.actions == (ScheduleTask(task_id=1, name="say_hello", input='"Seattle"'),)
    assert kinds(decision.new_history) == ["orchestrator_started", "task_completed", "task_scheduled"]


def test_the_last_completion_completes_the_orchestration_with_its_output(make_history: MakeHistory) -> None:
    h = make_history("hello_cities")
    h.orchestrator_started().started().task_scheduled(0, "say_hello", "Tokyo")
    for task_id, city in enumerate(["Seattle", "London"], start=1):
        next_episode(h).task_completed(task_id - 1, f"Hello {city}").task_scheduled(
            task_id, "say_hello", city
        )
    past = h.take()
    new = next_episode(h).task_completed(2, "Hello London!").take()
    decision = execute(hello_cities, past, new)
    assert decision.status == COMPLETED
    assert decision.output == '["Hello Seattle","Hello London","Hello London!"]'
    assert decision.actions == ()
    final = decision.new_history[-1]
    assert isinstance(final, ExecutionCompleted)
    assert (final.status, final.result, final.timestamp) == (COMPLETED, decision.output, h.now)


def test_a_function_passed_instead_of_a_name_schedules_under_its_registered_name(
    make_history: MakeHistory,
) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        return (yield ctx.call_activity(charge, input=5))

    decision = execute(orchestrator, [], first_episode(make_history()))
    assert decision.actions == (ScheduleTask(task_id=0, name="charge", input="5"),)


def test_a_failed_activity_raises_task_failed_error_in_the_orchestrator(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, str]:
        try:
            yield ctx.call_activity(charge, input=5)
        except TaskFailedError as error:
            assert error.details.is_caused_by(ConnectionError)
            return f"gave up: {error.details.message}"
        return "charged"

    h = make_history()
    past = first_episode(h) + h.task_scheduled(0, "charge", 5).take()
    new = next_episode(h).task_failed(0, ConnectionError("card service down")).take()
    decision = execute(orchestrator, past, new)
    assert decision.status == COMPLETED
    assert decision.output == '"gave up: card service down"'


def test_an_unhandled_activity_failure_fails_the_orchestration(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        yield ctx.call_activity(charge, input=5)

    h = make_history()
    past = first_episode(h) + h.task_scheduled(0, "charge", 5).take()
    new = next_episode(h).task_failed(0, ValueError("bad card")).take()
    decision = execute(orchestrator, past, new)
    assert decision.status == FAILED
    assert decision.failure is not None
    assert decision.failure.error_type == "dtctl.core.task.TaskFailedError"
    assert "activity 'charge' failed: bad card" in decision.failure.message
    assert decision.new_history[-1] == ExecutionCompleted(
        timestamp=h.now, status=FAILED, failure=decision.failure
    )


def test_completions_for_unknown_task_ids_are_ignored_as_duplicates(make_history: MakeHistory) -> None:
    h = make_history("hello_cities")
    past = first_episode(h) + h.task_scheduled(0, "say_hello", "Tokyo").take()
    next_episode(h).task_completed(0, "Hello Tokyo!").task_completed(0, "again").task_completed(99, "never")
    new = h.task_failed(42, RuntimeError("stray")).timer_fired(7, timedelta(0)).take()
    decision = execute(hello_cities, past, new)
    assert decision.status == RUNNING
    assert decision.actions == (ScheduleTask(task_id=1, name="say_hello", input='"Seattle"'),)


def test_timers_from_a_timedelta_and_from_a_datetime(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, str]:
        yield ctx.create_timer(timedelta(minutes=5))
        yield ctx.create_timer(datetime(2030, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=2))))
        return "woke up"

    h = make_history()
    first = execute(orchestrator, [], first_episode(h))
    five_minutes = h.now + 300_000_000
    assert first.actions == (CreateTimer(task_id=0, fire_at=five_minutes),)
    past = [*h.build(), first.new_history[-1]]
    new = next_episode(h, 300).timer_fired(0, datetime(2024, 1, 1, 12, 5)).take()
    second = execute(orchestrator, past, new)
    seven_utc = int(datetime(2030, 1, 1, 7, 0, tzinfo=UTC).timestamp()) * 1_000_000
    assert second.actions == (CreateTimer(task_id=1, fire_at=seven_utc),)
    past = past + list(second.new_history)
    third = execute(orchestrator, past, next_episode(h, 10).timer_fired(1).take())
    assert (third.status, third.output) == (COMPLETED, '"woke up"')


def test_a_timer_needs_a_datetime_or_a_timedelta(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        yield ctx.create_timer(5)  # type: ignore[arg-type]

    decision = execute(orchestrator, [], first_episode(make_history()))
    assert decision.status == FAILED
    assert (
        decision.failure is not None
        and "create_timer takes a datetime or a timedelta" in decision.failure.message
    )


def fan_out(ctx: OrchestrationContext, count: int) -> Generator[Task[Any], Any, Any]:
    tasks = [ctx.call_activity(charge, input=n) for n in range(count)]
    return (yield when_all(tasks))


def test_when_all_waits_for_every_task_and_returns_results_in_input_order(make_history: MakeHistory) -> None:
    h = make_history()
    first = execute(fan_out, [], first_episode(h, 3))
    assert [a.task_id for a in first.actions] == [0, 1, 2]
    past = h.build() + list(first.new_history[2:])
    partial = execute(fan_out, past, next_episode(h).task_completed(2, "c").task_completed(0, "a").take())
    assert (partial.status, partial.actions) == (RUNNING, ())
    past += list(partial.new_history)
    done = execute(fan_out, past, next_episode(h).task_completed(1, "b").take())
    assert (done.status, done.output) == (COMPLETED, '["a","b","c"]')


def test_when_all_raises_the_first_failure_in_input_order_after_all_finished(
    make_history: MakeHistory,
) -> None:
    h = make_history()
    first = execute(fan_out, [], first_episode(h, 3))
    past = h.build() + list(first.new_history[2:])
    new = next_episode(h).task_failed(2, KeyError("late")).task_completed(1, "b").take()
    waiting = execute(fan_out, past, new)
    assert waiting.status == RUNNING  # task 0 still running: when_all has not given up yet
    past += list(waiting.new_history)
    done = execute(fan_out, past, next_episode(h).task_failed(0, ValueError("early")).take())
    assert done.status == FAILED
    assert done.failure is not None and "early" in done.failure.message


def test_when_all_of_nothing_completes_at_once(make_history: MakeHistory) -> None:
    decision = execute(fan_out, [], first_episode(make_history(), 0))
    assert (decision.status, decision.output) == (COMPLETED, "[]")


def test_when_any_completes_with_the_first_finished_task_object(make_history: MakeHistory) -> None:
    def race(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, str]:
        work = ctx.call_activity(charge, input=1)
        timeout = ctx.create_timer(timedelta(seconds=30))
        winner = yield when_any([work, timeout])
        return "timed out" if winner == timeout else f"done: {work.get_result()}"

    h = make_history()
    first = execute(race, [], first_episode(h))
    past = h.build() + list(first.new_history[2:])
    by_work = execute(race, past, next_episode(h).task_completed(0, "ok").timer_fired(1).take())
    assert by_work.output == '"done: ok"'
    by_timer = execute(race, past, next_episode(h, 30).timer_fired(1).task_completed(0, "late").take())
    assert by_timer.output == '"timed out"'


def test_new_actions_beyond_the_recorded_ones_are_the_new_actions(make_history: MakeHistory) -> None:
    def two(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        first = ctx.call_activity(charge, input=1)
        second = ctx.call_activity(refund, input=2)
        return (yield when_all([first, second]))

    h = make_history()
    # history only recorded task 0 (say the code gained the second call since)
    past = first_episode(h) + h.task_scheduled(0, "charge", 1).take()
    decision = execute(two, past, next_episode(h).take())
    assert decision.actions == (ScheduleTask(task_id=1, name="refund", input="2"),)
    assert kinds(decision.new_history) == ["orchestrator_started", "task_scheduled"]


def test_is_replaying_is_true_only_for_past_events(make_history: MakeHistory) -> None:
    seen: list[bool] = []

    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        seen.append(ctx.is_replaying)
        yield ctx.call_activity(charge, input=1)
        seen.append(ctx.is_replaying)
        yield ctx.call_activity(charge, input=2)

    h = make_history()
    past = first_episode(h) + h.task_scheduled(0, "charge", 1).take()
    execute(orchestrator, past, next_episode(h).task_completed(0).take())
    assert seen == [True, False]


def test_the_executor_refuses_nothing_after_the_end_and_repeats_its_decision(
    make_history: MakeHistory,
) -> None:
    h = make_history("hello_cities")
    executor = OrchestrationExecutor(hello_cities)
    executor.execute([], first_episode(h))
    for task_id in range(3):
        decision = executor.resume(next_episode(h).task_completed(task_id, str(task_id)).take())
    assert decision.status == COMPLETED and executor.is_finished
    again = executor.resume(next_episode(h).task_completed(0, "dup").take())
    assert (again.status, again.output, again.new_history, again.actions) == (
        COMPLETED,
        decision.output,
        (),
        (),
    )


@pytest.mark.parametrize("value", [1, "x", None])
def test_plain_function_orchestrators_complete_at_once(make_history: MakeHistory, value: Any) -> None:
    def plain(ctx: OrchestrationContext, data: Any) -> Any:
        return data

    decision = execute(plain, [], first_episode(make_history(), value))
    assert decision.status == COMPLETED
    assert decision.output == (None if value is None else f"{value}" if value == 1 else '"x"')
