"""Task cancellation under replay: TimerTask.cancel(), cancelled external-event waits, when_any losers.

Ported from the durabletask SDK's executor tests (``test_timer_can_be_cancelled_after_when_any_winner``,
``test_long_timer_can_be_cancelled_after_when_any_winner``, ``test_only_cancellable_tasks_expose_cancel``,
``test_cancelled_task_get_result_raises_task_cancelled_error``) with dtctl's decisions checked on top: a
timer cancelled before it was dispatched is never created; one cancelled later is dropped at the hub
(``CancelTimer``) and recorded (``timer_cancelled``), so every replay decides the same.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from dtctl import task
from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import CancelTimer, CreateTimer, Decision
from dtctl.core.history import COMPLETED, FAILED, RUNNING, HistoryEvent
from dtctl.core.replay import OrchestrationExecutor, execute
from dtctl.testing import HistoryBuilder
from tests.core.support import MakeHistory, charge, first_episode, kinds, next_episode


class Episodes:
    """One warm executor, every decision checked against a cold replay of the same history."""

    def __init__(self, orchestrator: Any) -> None:
        self.orchestrator = orchestrator
        self.executor = OrchestrationExecutor(orchestrator)
        self.history: list[HistoryEvent] = []

    def step(self, new: list[HistoryEvent]) -> Decision:
        cold = execute(self.orchestrator, self.history, new)
        warm = self.executor.resume(new) if self.history else self.executor.execute([], new)
        assert warm == cold
        self.history += list(warm.new_history)
        return warm


def approval_or_timeout(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, str]:
    approval = ctx.wait_for_external_event("approval")
    timeout = ctx.create_timer(timedelta(hours=1))
    winner = yield task.when_any([approval, timeout])
    if winner == approval:
        timeout.cancel()
        return "approved"
    return "timed out"


def test_sdk_timer_can_be_cancelled_after_when_any_winner(make_history: MakeHistory) -> None:
    h = make_history()
    run = Episodes(approval_or_timeout)
    first = run.step(first_episode(h))
    assert first.actions == (CreateTimer(task_id=0, fire_at=h.now + 3600 * 1_000_000),)
    done = run.step(next_episode(h).event_raised("approval", True).take())
    assert (done.status, done.output) == (COMPLETED, '"approved"')
    assert done.actions == (CancelTimer(task_id=0),)
    assert kinds(done.new_history) == [
        "orchestrator_started",
        "event_raised",
        "timer_cancelled",
        "execution_completed",
    ]


def test_a_cancelled_timer_stays_cancelled_and_its_late_timer_fired_is_ignored(
    make_history: MakeHistory,
) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
        approval = ctx.wait_for_external_event("approval")
        timeout = ctx.create_timer(timedelta(minutes=5))
        yield task.when_any([approval, timeout])
        timeout.cancel()
        return (yield ctx.wait_for_external_event("shipped"))

    h = make_history()
    run = Episodes(orchestrator)
    run.step(first_episode(h))
    cancelled = run.step(next_episode(h).event_raised("approval").take())
    assert (cancelled.status, cancelled.actions) == (RUNNING, (CancelTimer(task_id=0),))
    # the hub could not delete it in time (or an older hub sent it anyway): replay ignores it
    late = run.step(next_episode(h, 600).timer_fired(0).take())
    assert (late.status, late.actions) == (RUNNING, ())
    done = run.step(next_episode(h).event_raised("shipped", "yes").take())
    assert (done.status, done.output, done.actions) == (COMPLETED, '"yes"', ())


def test_a_timer_fired_in_the_same_episode_as_the_winner_is_ignored(make_history: MakeHistory) -> None:
    h = make_history()
    run = Episodes(approval_or_timeout)
    run.step(first_episode(h))
    both = next_episode(h, 3600).event_raised("approval").timer_fired(0).take()
    done = run.step(both)
    assert (done.status, done.output) == (COMPLETED, '"approved"')
    assert done.actions == (CancelTimer(task_id=0),)


def test_a_timer_cancelled_before_it_was_dispatched_is_never_created(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
        timer = ctx.create_timer(timedelta(days=1))
        assert timer.cancel() is True
        assert timer.cancel() is False  # already complete (cancelled)
        return (yield ctx.call_activity(charge, input=3))

    h = make_history()
    run = Episodes(orchestrator)
    first = run.step(first_episode(h))
    assert [type(a).__name__ for a in first.actions] == ["ScheduleTask"]
    assert first.actions[0].task_id == 1  # the timer's id stays used, the same on every replay
    assert "timer_created" not in kinds(first.new_history)
    done = run.step(next_episode(h).task_completed(1, "charged 3").take())
    assert (done.status, done.output) == (COMPLETED, '"charged 3"')


def test_a_timer_that_already_fired_cannot_be_cancelled(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
        timer = ctx.create_timer(timedelta(seconds=1))
        yield timer
        return timer.cancel()

    h = make_history()
    run = Episodes(orchestrator)
    run.step(first_episode(h))
    done = run.step(next_episode(h).timer_fired(0).take())
    assert (done.status, done.output, done.actions) == (COMPLETED, "false", ())


def test_a_cancelled_event_wait_does_not_consume_a_later_event(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
        first = ctx.wait_for_external_event("vote")
        second = ctx.wait_for_external_event("vote")
        first.cancel()
        timer = ctx.create_timer(timedelta(seconds=10))
        yield timer
        third = ctx.wait_for_external_event("Vote")
        return [(yield second), (yield third), first.is_cancelled]

    h = make_history()
    run = Episodes(orchestrator)
    run.step(first_episode(h))
    run.step(next_episode(h).event_raised("vote", "a").event_raised("vote", "b").take())
    done = run.step(next_episode(h, 10).timer_fired(0).take())
    assert (done.status, done.output) == (COMPLETED, '["a","b",true]')


def test_when_any_with_a_cancelled_event_wait_and_a_timer(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
        approval = ctx.wait_for_external_event("approval")
        timeout = ctx.create_timer(timedelta(minutes=1))
        winner = yield task.when_any([approval, timeout])
        assert winner is timeout
        approval.cancel()  # the SDK's way to drop the losing wait
        return (yield ctx.wait_for_external_event("approval"))

    h = make_history()
    run = Episodes(orchestrator)
    run.step(first_episode(h))
    waiting = run.step(next_episode(h, 60).timer_fired(0).take())
    assert (waiting.status, waiting.actions) == (RUNNING, ())
    done = run.step(next_episode(h).event_raised("approval", "late").take())
    assert (done.status, done.output) == (COMPLETED, '"late"')


def test_yielding_a_cancelled_task_raises_task_cancelled_error(make_history: MakeHistory) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
        wait = ctx.wait_for_external_event("never")
        wait.cancel()
        try:
            yield task.when_all([wait, ctx.create_timer(timedelta(0))])
        except task.TaskCancelledError as error:
            caught = str(error)
        try:
            yield wait
        except task.TaskCancelledError:
            return caught
        return "not raised"

    h = make_history()
    run = Episodes(orchestrator)
    run.step(first_episode(h))
    done = run.step(next_episode(h).timer_fired(0).take())
    assert (done.status, done.output) == (COMPLETED, "\"event 'never' was cancelled\"")


def test_a_history_cancel_the_code_no_longer_makes_is_non_deterministic(make_history: MakeHistory) -> None:
    def keeps_the_timer(ctx: OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
        approval = ctx.wait_for_external_event("approval")
        timeout = ctx.create_timer(timedelta(hours=1))
        yield task.when_any([approval, timeout])
        return (yield ctx.wait_for_external_event("more"))

    h = make_history()
    past = first_episode(h) + h.timer_created(0, timedelta(hours=1)).take()
    past += next_episode(h).event_raised("approval").timer_cancelled(0).take()
    decision = execute(keeps_the_timer, past, next_episode(h).event_raised("more").take())
    assert decision.status == FAILED
    assert decision.failure is not None
    assert decision.failure.error_type.endswith("NonDeterminismError")
    assert "history recorded cancel() of a timer" in decision.failure.message


def test_sdk_only_cancellable_tasks_expose_cancel() -> None:
    ctx = OrchestrationContext("abc123")
    timer_task = ctx.create_timer(timedelta(minutes=5))
    external_event_task = ctx.wait_for_external_event("approval")
    activity_task = ctx.call_activity(charge)
    assert isinstance(timer_task, task.CancellableTask)
    assert isinstance(external_event_task, task.CancellableTask)
    assert not isinstance(activity_task, task.CancellableTask)
    assert not hasattr(activity_task, "cancel")
    assert not hasattr(activity_task, "is_cancelled")


def test_sdk_cancelled_task_get_result_raises_task_cancelled_error() -> None:
    cancellable_task: task.CancellableTask[Any] = task.CancellableTask()
    assert cancellable_task.cancel() is True
    assert cancellable_task.is_cancelled is True
    assert cancellable_task.is_complete and not cancellable_task.is_failed
    with pytest.raises(task.TaskCancelledError):
        cancellable_task.get_result()


def test_the_builder_records_a_cancellation() -> None:
    h = HistoryBuilder()
    [event] = h.timer_cancelled(4).take()
    assert (event.kind, event.task_ref) == ("timer_cancelled", 4)
