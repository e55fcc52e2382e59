"""External events, send_event and sub-orchestrations under replay."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import SendEvent, StartSubOrchestration
from dtctl.core.history import COMPLETED, FAILED, RUNNING, EventSent, SubOrchestrationCreated
from dtctl.core.replay import execute
from dtctl.core.task import Task, TaskFailedError
from tests.core.support import MakeHistory, first_episode, kinds, next_episode


def approvals(ctx: OrchestrationContext, count: int) -> Generator[Task[Any], Any, list[Any]]:
    received = []
    for _ in range(count):
        received.append((yield ctx.wait_for_external_event("Approval")))
    return received


def test_an_event_completes_a_waiting_task_with_its_data(make_history: MakeHistory) -> None:
    h = make_history()
    past = first_episode(h, 1)
    decision = execute(approvals, past, next_episode(h).event_raised("approval", {"by": "kim"}).take())
    assert (decision.status, decision.output) == (COMPLETED, '[{"by":"kim"}]')
    assert kinds(decision.new_history) == ["orchestrator_started", "event_raised", "execution_completed"]


def test_event_names_are_case_insensitive_and_early_events_are_buffered_fifo(
    make_history: MakeHistory,
) -> None:
    h = make_history()
    new = first_episode(h, 0)  # waits for nothing yet: the events arrive before anyone waits

    def late_waiter(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, list[Any]]:
        yield ctx.create_timer(ctx.current_utc_datetime)
        first = yield ctx.wait_for_external_event("APPROVAL")
        second = yield ctx.wait_for_external_event("approval")
        return [first, second]

    first = execute(late_waiter, [], new + h.event_raised("Approval", 1).event_raised("other", 0).take())
    h.event_raised("approval", 2)
    past = new + list(first.new_history[2:])
    done = execute(late_waiter, past + h.take(), next_episode(h).timer_fired(0).take())
    assert (done.status, done.output) == (COMPLETED, "[1,2]")


def test_several_waiters_on_one_name_complete_in_order(make_history: MakeHistory) -> None:
    def two_waiters(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, list[Any]]:
        first = ctx.wait_for_external_event("vote")
        second = ctx.wait_for_external_event("VOTE")
        return [(yield first), (yield second)]

    h = make_history()
    new = first_episode(h) + h.event_raised("vote", "a").event_raised("Vote", "b").take()
    decision = execute(two_waiters, [], new)
    assert decision.output == '["a","b"]'


def test_send_event_is_an_action_with_its_own_task_id(make_history: MakeHistory) -> None:
    def notify(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, str]:
        ctx.send_event("shipping-7", "order_paid", data={"amount": 3})
        yield ctx.call_activity("charge", input=3)
        return "sent"

    h = make_history()
    decision = execute(notify, [], first_episode(h))
    sent = SendEvent(task_id=0, instance_id="shipping-7", name="order_paid", data='{"amount":3}')
    assert decision.actions[0] == sent
    assert decision.new_history[2] == EventSent(
        timestamp=h.now, task_id=0, instance_id="shipping-7", name="order_paid", input='{"amount":3}'
    )
    past = h.build() + list(decision.new_history[2:])
    done = execute(notify, past, next_episode(h).task_completed(1, "ok").take())
    assert (done.status, done.actions) == (COMPLETED, ())


def parent(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
    default_id = ctx.call_sub_orchestrator("child", input=1)
    named = ctx.call_sub_orchestrator("child", input=2, instance_id="child-two")
    results = [(yield default_id)]
    try:
        results.append((yield named))
    except TaskFailedError as error:
        results.append(f"child failed: {error.details.message}")
    return results


def test_sub_orchestrations_get_a_default_child_id_or_the_given_one(make_history: MakeHistory) -> None:
    h = make_history(instance_id="order-9")
    decision = execute(parent, [], first_episode(h))
    assert decision.actions == (
        StartSubOrchestration(task_id=0, name="child", instance_id="order-9:0000", input="1"),
        StartSubOrchestration(task_id=1, name="child", instance_id="child-two", input="2"),
    )
    assert decision.new_history[2] == SubOrchestrationCreated(
        timestamp=h.now, task_id=0, name="child", instance_id="order-9:0000", input="1"
    )


def test_sub_orchestration_completion_and_failure_reach_the_parent(make_history: MakeHistory) -> None:
    h = make_history(instance_id="order-9")
    past = first_episode(h)
    h.sub_orchestration_created(0, "child", 1)
    past += h.sub_orchestration_created(1, "child", 2, instance_id="child-two").take()
    waiting = execute(parent, past, next_episode(h).sub_orchestration_completed(0, {"ok": True}).take())
    assert waiting.status == RUNNING
    past += list(waiting.new_history)
    done = execute(parent, past, next_episode(h).sub_orchestration_failed(1, LookupError("no stock")).take())
    assert (done.status, done.output) == (COMPLETED, '[{"ok":true},"child failed: no stock"]')


def test_an_unhandled_sub_orchestration_failure_fails_the_parent(make_history: MakeHistory) -> None:
    def strict(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        return (yield ctx.call_sub_orchestrator("child"))

    h = make_history()
    past = first_episode(h) + h.sub_orchestration_created(0, "child").take()
    done = execute(strict, past, next_episode(h).sub_orchestration_failed(0, LookupError("gone")).take())
    assert done.status == FAILED
    assert done.failure is not None and done.failure.error_type == "dtctl.core.task.TaskFailedError"
    assert done.failure.message == "sub-orchestration 'child' failed: gone"


def test_the_child_knows_its_parent(make_history: MakeHistory) -> None:
    seen: list[Any] = []

    def child(ctx: OrchestrationContext, _: Any) -> str:
        seen.append((ctx.instance_id, ctx.parent_instance_id, ctx.execution_id))
        return "ok"

    h = make_history(instance_id="order-9:0000")
    execute(
        child, [], h.orchestrator_started().started(parent_instance_id="order-9", parent_task_id=0).take()
    )
    assert seen == [("order-9:0000", "order-9", "execution-1")]
