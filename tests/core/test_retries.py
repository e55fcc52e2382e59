"""Retries: durable timers between attempts, backoff, caps, attempts and a timeout in orchestration time."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import CreateTimer, Decision, ScheduleTask, StartSubOrchestration
from dtctl.core.history import COMPLETED, FAILED, RUNNING, HistoryEvent
from dtctl.core.replay import OrchestrationExecutor, execute
from dtctl.core.task import RetryPolicy, Task, TaskFailedError
from dtctl.testing import HistoryBuilder
from tests.core.support import MakeHistory, charge, first_episode, next_episode

SECOND = 1_000_000


class Episodes:
    """Drives one executor warm and checks every decision against a cold replay."""

    def __init__(self, orchestrator: Any, h: HistoryBuilder) -> None:
        self.orchestrator = orchestrator
        self.h = h
        self.executor = OrchestrationExecutor(orchestrator)
        self.history: list[HistoryEvent] = []

    def step(self, new: list[HistoryEvent]) -> Decision:
        cold = execute(self.orchestrator, self.history, new)
        warm = self.executor.resume(new) if self.history else self.executor.execute([], new)
        assert warm == cold
        self.history += list(warm.new_history)
        return warm


def flaky(policy: RetryPolicy) -> Any:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        try:
            return (yield ctx.call_activity(charge, input=7, retry_policy=policy))
        except TaskFailedError as error:
            return f"gave up after {error.details.message}"

    return orchestrator


def test_a_failed_attempt_waits_on_a_timer_then_reschedules_under_a_new_task_id(
    make_history: MakeHistory,
) -> None:
    policy = RetryPolicy(
        timedelta(seconds=10), 5, backoff_coefficient=2.0, max_retry_interval=timedelta(seconds=15)
    )
    h = make_history()
    run = Episodes(flaky(policy), h)
    assert run.step(first_episode(h)).actions == (ScheduleTask(task_id=0, name="charge", input="7"),)
    failed = run.step(next_episode(h).task_failed(0, ConnectionError("down")).take())
    assert failed.status == RUNNING
    assert failed.actions == (CreateTimer(task_id=1, fire_at=h.now + 10 * SECOND),)
    again = run.step(next_episode(h, 10).timer_fired(1).take())
    assert again.actions == (ScheduleTask(task_id=2, name="charge", input="7"),)
    second_failure = run.step(next_episode(h).task_failed(2, ConnectionError("down")).take())
    # 10 s * 2 = 20 s, capped by max_retry_interval
    assert second_failure.actions == (CreateTimer(task_id=3, fire_at=h.now + 15 * SECOND),)
    run.step(next_episode(h, 15).timer_fired(3).take())
    done = run.step(next_episode(h).task_completed(4, "charged").take())
    assert (done.status, done.output) == (COMPLETED, '"charged"')


def test_retries_stop_when_the_attempts_are_used_up(make_history: MakeHistory) -> None:
    h = make_history()
    run = Episodes(flaky(RetryPolicy(timedelta(seconds=1), 2)), h)
    run.step(first_episode(h))
    run.step(next_episode(h).task_failed(0, ValueError("nope")).take())
    run.step(next_episode(h).timer_fired(1).take())
    done = run.step(next_episode(h).task_failed(2, ValueError("still nope")).take())
    assert (done.status, done.output) == (COMPLETED, '"gave up after still nope"')


def test_the_retry_timeout_is_measured_in_orchestration_time(make_history: MakeHistory) -> None:
    policy = RetryPolicy(timedelta(seconds=10), 10, retry_timeout=timedelta(seconds=30))
    h = make_history()
    run = Episodes(flaky(policy), h)
    run.step(first_episode(h))
    retry = run.step(next_episode(h, 19).task_failed(0, ValueError("slow")).take())  # next try 29 s in
    assert [type(a) for a in retry.actions] == [CreateTimer]
    run.step(next_episode(h, 10).timer_fired(1).take())
    done = run.step(next_episode(h, 0.5).task_failed(2, ValueError("late")).take())  # next: 39.5 s in
    assert done.output == '"gave up after late"'


@pytest.mark.parametrize(("failed_after", "retried"), [(19.999999, True), (20, False)])
def test_an_attempt_that_would_start_at_the_deadline_is_not_made(
    make_history: MakeHistory, failed_after: float, retried: bool
) -> None:
    policy = RetryPolicy(timedelta(seconds=10), 10, retry_timeout=timedelta(seconds=30))
    h = make_history()
    run = Episodes(flaky(policy), h)
    run.step(first_episode(h))
    decision = run.step(next_episode(h, failed_after).task_failed(0, ValueError("slow")).take())
    assert (decision.status == RUNNING) is retried
    assert [type(a) for a in decision.actions] == ([CreateTimer] if retried else [])


def test_sdk_retry_timeout_makes_four_attempts(make_history: MakeHistory) -> None:
    """The durabletask SDK's ``test_retry_timeout``: delays 1, 2, 4, 8 s; a 5th attempt would start 15 s
    in, past the 14 s timeout, so there are 4 attempts (instant failures, timers fire on time)."""
    policy = RetryPolicy(
        first_retry_interval=timedelta(seconds=1),
        max_number_of_attempts=5,
        backoff_coefficient=2,
        max_retry_interval=timedelta(seconds=10),
        retry_timeout=timedelta(seconds=14),
    )
    h = make_history()
    run = Episodes(flaky(policy), h)
    decision = run.step(first_episode(h))
    attempts, task_id = 1, 0
    while decision.status == RUNNING:
        decision = run.step(next_episode(h, 0).task_failed(task_id, RuntimeError("Kah-BOOOOM!!!")).take())
        if decision.status != RUNNING:
            break
        (timer,) = decision.actions
        assert isinstance(timer, CreateTimer)
        h.orchestrator_started(at=timedelta(microseconds=timer.fire_at - h.now))
        decision = run.step(h.timer_fired(timer.task_id).take())
        (retry,) = decision.actions
        assert isinstance(retry, ScheduleTask)
        attempts, task_id = attempts + 1, retry.task_id
    assert attempts == 4
    assert decision.output == '"gave up after Kah-BOOOOM!!!"'


def test_a_sub_orchestration_is_retried_with_a_fresh_default_id_or_the_same_given_id(
    make_history: MakeHistory,
) -> None:
    policy = RetryPolicy(timedelta(seconds=1), 3)

    def parent(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        default = ctx.call_sub_orchestrator("child", retry_policy=policy)
        named = ctx.call_sub_orchestrator("child", instance_id="fixed", retry_policy=policy)
        return [(yield default), (yield named)]

    h = make_history(instance_id="p")
    run = Episodes(parent, h)
    run.step(first_episode(h))
    failed = run.step(next_episode(h).sub_orchestration_failed(0, RuntimeError("x")).take())
    failed_too = run.step(next_episode(h).sub_orchestration_failed(1, RuntimeError("y")).take())
    assert [a.task_id for a in failed.actions + failed_too.actions] == [2, 3]
    retried = run.step(next_episode(h).timer_fired(2).timer_fired(3).take())
    assert retried.actions == (
        StartSubOrchestration(task_id=4, name="child", instance_id="p:0004"),
        StartSubOrchestration(task_id=5, name="child", instance_id="fixed"),
    )
    done = run.step(
        next_episode(h).sub_orchestration_completed(4, 1).sub_orchestration_completed(5, 2).take()
    )
    assert (done.status, done.output) == (COMPLETED, "[1,2]")


def test_an_exhausted_retry_fails_the_orchestration_when_unhandled(make_history: MakeHistory) -> None:
    policy = RetryPolicy(timedelta(seconds=1), 1)

    def strict(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        return (yield ctx.call_activity(charge, input=1, retry_policy=policy))

    h = make_history()
    run = Episodes(strict, h)
    run.step(first_episode(h))
    done = run.step(next_episode(h).task_failed(0, ValueError("bad")).take())
    assert done.status == FAILED


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 2_000_000), (2, 6_000_000), (3, 18_000_000), (4, 25_000_000)],
)
def test_the_delay_grows_by_the_backoff_coefficient_and_is_capped(attempt: int, expected: int) -> None:
    policy = RetryPolicy(
        timedelta(seconds=2), 9, backoff_coefficient=3, max_retry_interval=timedelta(seconds=25)
    )
    assert policy.delay_us(attempt) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first_retry_interval": timedelta(seconds=-1), "max_number_of_attempts": 1},
        {"first_retry_interval": 5, "max_number_of_attempts": 1},
        {"first_retry_interval": timedelta(seconds=1), "max_number_of_attempts": 0},
        {"first_retry_interval": timedelta(seconds=1), "max_number_of_attempts": True},
        {
            "first_retry_interval": timedelta(seconds=1),
            "max_number_of_attempts": 2,
            "backoff_coefficient": 0.5,
        },
        {
            "first_retry_interval": timedelta(0),
            "max_number_of_attempts": 2,
            "max_retry_interval": timedelta(-1),
        },
        {"first_retry_interval": timedelta(0), "max_number_of_attempts": 2, "retry_timeout": timedelta(-1)},
    ],
)
def test_retry_policies_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        RetryPolicy(**kwargs)


def test_a_retry_policy_keeps_the_sdk_names_and_defaults() -> None:
    policy = RetryPolicy(
        first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3, backoff_coefficient=None
    )
    assert policy.backoff_coefficient == 1.0
    assert (policy.max_retry_interval, policy.retry_timeout) == (None, None)


def test_a_retry_policy_must_be_a_retry_policy(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        return (yield ctx.call_activity(charge, retry_policy={"attempts": 3}))  # type: ignore[arg-type]

    decision = execute(orchestrator, [], first_episode(make_history()))
    assert decision.failure is not None
    assert "retry_policy must be a RetryPolicy, not dict" in decision.failure.message
