"""Orchestrator code written for the durabletask SDK runs after changing its import to dtctl's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dtctl
from dtctl import task  # was: from durabletask import task
from dtctl.core.history import COMPLETED, RUNNING
from dtctl.core.replay import OrchestrationExecutor
from tests.core.support import MakeHistory, first_episode, next_episode


def hello(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def sdk_style(ctx: task.OrchestrationContext, names: list[str]):  # type: ignore[no-untyped-def]
    greetings = yield task.when_all([ctx.call_activity(hello, input=name) for name in names])
    yield ctx.create_timer(timedelta(seconds=5))
    policy = task.RetryPolicy(
        first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3, backoff_coefficient=2
    )
    try:
        last = yield ctx.call_activity(hello, input="retry", retry_policy=policy)
    except task.TaskFailedError as error:
        last = error.details.message
    winner = yield task.when_any([ctx.wait_for_external_event("done"), ctx.create_timer(timedelta(hours=1))])
    return {"greetings": greetings, "last": last, "event": isinstance(winner, task.Task)}


def test_the_drop_in_module_has_the_sdk_names() -> None:
    for name in (
        "OrchestrationContext",
        "ActivityContext",
        "Task",
        "CompletableTask",
        "when_all",
        "when_any",
        "RetryPolicy",
        "TaskFailedError",
        "NonDeterminismError",
        "FailureDetails",
    ):
        assert hasattr(task, name), name
    assert task.when_all is dtctl.when_all
    assert task.get_name(hello) == "hello"


def test_sdk_style_orchestrator_code_runs_through_replay(make_history: MakeHistory) -> None:
    h = make_history("sdk_style")
    executor = OrchestrationExecutor(sdk_style)
    first = executor.execute([], first_episode(h, ["Tokyo", "Lyon"]))
    assert [a.name for a in first.actions] == ["hello", "hello"]  # type: ignore[union-attr]
    steps: list[Callable[[], Any]] = [
        lambda: next_episode(h).task_completed(0, "Hello Tokyo!").task_completed(1, "Hello Lyon!"),
        lambda: next_episode(h, 5).timer_fired(2, timedelta(0)),
        lambda: next_episode(h).task_failed(3, ConnectionError("flaky")),
        lambda: next_episode(h, 1).timer_fired(4, timedelta(0)),
        lambda: next_episode(h).task_completed(5, "Hello retry!"),
    ]
    for step in steps:
        decision = executor.resume(step().take())
        assert decision.status == RUNNING, decision.failure
    done = executor.resume(next_episode(h).event_raised("DONE", True).take())
    assert done.status == COMPLETED
    assert dtctl.task is task
    expected = '{"greetings":["Hello Tokyo!","Hello Lyon!"],"last":"Hello retry!","event":true}'
    assert done.output == expected
