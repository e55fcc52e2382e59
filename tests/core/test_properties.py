"""Property tests: history round-trips, replay determinism, warm resume == cold replay."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import Decision
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    ALL_STATUSES,
    EVENT_TYPES,
    RUNNING,
    SUSPENDED,
    EventRaised,
    ExecutionResumed,
    ExecutionSuspended,
    ExecutionTerminated,
    GenericEvent,
    HistoryEvent,
    OrchestratorStarted,
    SubOrchestrationCompleted,
    SubOrchestrationCreated,
    SubOrchestrationFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
    decode_event,
    encode_event,
    event_from_dict,
    event_to_dict,
)
from dtctl.core.replay import OrchestrationExecutor, execute
from dtctl.core.task import RetryPolicy, Task, TaskFailedError, when_all, when_any
from dtctl.testing import HistoryBuilder
from tests.core.support import START, first_episode

# --- history JSON round-trip ---------------------------------------------------------------------------

texts = st.text(max_size=20)
json_texts = st.one_of(st.none(), st.sampled_from(['"x"', "1", "[1,2]", '{"a":null}', "null", '"é"']))
failures = st.builds(FailureDetails, message=texts, error_type=texts, stack_trace=st.one_of(st.none(), texts))
ints = st.integers(min_value=-(2**62), max_value=2**62)


def _field_strategy(name: str, annotation: str) -> st.SearchStrategy[Any]:
    if "FailureDetails" in annotation:
        return st.one_of(st.none(), failures) if "None" in annotation else failures
    if annotation.startswith("int"):
        return st.one_of(st.none(), ints) if "None" in annotation else ints
    if annotation == "bool":
        return st.booleans()
    if name == "status":
        return st.sampled_from(ALL_STATUSES)
    if name in ("input", "result"):
        return json_texts
    return st.one_of(st.none(), texts) if "None" in annotation else texts


def _event_strategy(cls: type[HistoryEvent]) -> st.SearchStrategy[HistoryEvent]:
    fields = {f.name: _field_strategy(f.name, str(f.type)) for f in dataclasses.fields(cls)}
    return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
@given(data=st.data())
def test_every_event_kind_round_trips_through_json(kind: str, data: st.DataObject) -> None:
    # per kind, so a kind added to EVENT_TYPES is exercised without touching this test
    event = data.draw(_event_strategy(EVENT_TYPES[kind]))
    assert type(event) is EVENT_TYPES[kind]
    assert decode_event(encode_event(event)) == event
    assert event_from_dict(event_to_dict(event)) == event


# --- a busy orchestrator for the replay properties -----------------------------------------------------

POLICY = RetryPolicy(
    first_retry_interval=timedelta(seconds=2), max_number_of_attempts=3, backoff_coefficient=2.0
)


def busy(ctx: OrchestrationContext, rounds: int) -> Generator[Task[Any], Any, Any]:
    seen: list[Any] = [ctx.new_uuid()]
    ctx.set_custom_status({"round": rounds, "step": "start"})
    first = ctx.call_activity("charge", input=rounds)
    second = ctx.call_activity("refund", input=rounds, retry_policy=POLICY)
    timer = ctx.create_timer(timedelta(seconds=30))
    go = ctx.wait_for_external_event("Go")
    winner = yield when_any([first, timer, go])
    seen.append([first, timer, go].index(winner))
    try:
        seen.append((yield when_all([first, second])))
    except TaskFailedError as error:
        seen.append(error.details.message)
    ctx.set_custom_status({"round": rounds, "step": "middle"})
    ctx.send_event("observer", "progress", data=len(seen))
    try:
        seen.append((yield ctx.call_sub_orchestrator("child", input=seen[-1], retry_policy=POLICY)))
    except TaskFailedError:
        seen.append("child failed")
    command = yield ctx.wait_for_external_event("go")
    seen.append(ctx.new_uuid())
    if command == "again":
        ctx.continue_as_new(rounds + 1, save_events=True)
        return None
    if command == "boom":
        raise ValueError("boom")
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(minutes=1))
    return seen


_COMPLETIONS = (TaskCompleted, TaskFailed, TimerFired, SubOrchestrationCompleted, SubOrchestrationFailed)


def _outstanding(history: list[HistoryEvent]) -> dict[int, str]:
    """Task ids scheduled and not completed yet, with what completes them."""
    open_ids: dict[int, str] = {}
    for event in history:
        if isinstance(event, TaskScheduled):
            open_ids[event.task_id] = "task"
        elif isinstance(event, TimerCreated):
            open_ids[event.task_id] = "timer"
        elif isinstance(event, SubOrchestrationCreated):
            open_ids[event.task_id] = "sub"
        elif isinstance(event, _COMPLETIONS):
            open_ids.pop(event.task_id, None)
    return open_ids


def _message(data: st.DataObject, history: list[HistoryEvent], now: int) -> HistoryEvent:
    open_ids = _outstanding(history)
    choice = data.draw(
        st.sampled_from(
            [
                "complete",
                "complete",
                "complete",
                "event",
                "event",
                "duplicate",
                "suspend",
                "resume",
                "generic",
                "terminate",
            ]
        )
    )
    if choice == "complete" and open_ids:
        task_id = data.draw(st.sampled_from(sorted(open_ids)))
        failed = data.draw(st.booleans())
        failure = FailureDetails(message="no", error_type="builtins.RuntimeError")
        kind = open_ids[task_id]
        if kind == "timer":
            return TimerFired(timestamp=now, task_id=task_id, fire_at=now)
        if kind == "sub":
            if failed:
                return SubOrchestrationFailed(timestamp=now, task_id=task_id, failure=failure)
            return SubOrchestrationCompleted(timestamp=now, task_id=task_id, result=str(task_id))
        if failed:
            return TaskFailed(timestamp=now, task_id=task_id, failure=failure)
        return TaskCompleted(timestamp=now, task_id=task_id, result=str(task_id))
    if choice == "duplicate":
        task_id = data.draw(st.integers(min_value=0, max_value=30))
        return TaskCompleted(timestamp=now, task_id=task_id, result='"late"')
    if choice == "suspend":
        return ExecutionSuspended(timestamp=now)
    if choice == "resume":
        return ExecutionResumed(timestamp=now)
    if choice == "terminate" and data.draw(st.integers(0, 3)) == 0:
        return ExecutionTerminated(timestamp=now, reason="enough")
    if choice == "generic":
        return GenericEvent(timestamp=now)
    name = data.draw(st.sampled_from(["go", "Go", "GO", "other"]))
    payload = data.draw(st.sampled_from(['"again"', '"boom"', '"x"', "1", None]))
    return EventRaised(timestamp=now, name=name, input=payload)


def _assert_same(warm: Decision, cold: Decision) -> None:
    assert warm == cold


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_warm_resume_decides_what_a_cold_replay_decides(data: st.DataObject) -> None:
    h = HistoryBuilder(instance_id="order-1", name="busy", start=START)
    executor = OrchestrationExecutor(busy)
    new = first_episode(h, input=0)
    history: list[HistoryEvent] = []
    decision = executor.execute([], new)
    assert decision == execute(busy, [], new)
    history.extend(decision.new_history)
    now = h.now
    for _ in range(data.draw(st.integers(min_value=1, max_value=14))):
        now += data.draw(st.integers(min_value=0, max_value=60_000_000))
        episode: list[HistoryEvent] = [OrchestratorStarted(timestamp=now)]
        episode += [_message(data, history, now) for _ in range(data.draw(st.integers(1, 4)))]
        warm = executor.resume(episode)
        cold = execute(busy, history, episode)
        _assert_same(warm, cold)
        assert execute(busy, history, episode) == cold, "replaying the same history twice"
        history.extend(warm.new_history)
        if warm.status not in (RUNNING, SUSPENDED):
            # an ended execution repeats its decision, with nothing new, both ways
            later = [OrchestratorStarted(timestamp=now + 1), EventRaised(timestamp=now + 1, name="go")]
            assert executor.resume(later) == execute(busy, history, later)
            assert executor.resume(later).new_history == ()
            break


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["charge", "refund"]), min_size=1, max_size=8), st.data())
def test_replaying_a_history_twice_gives_the_same_decision(names: list[str], data: st.DataObject) -> None:
    def chain(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, list[Any]]:
        results = []
        for index, name in enumerate(names):
            results.append((yield ctx.call_activity(name, input=index)))
        results.append(ctx.new_uuid())
        return results

    h = HistoryBuilder(instance_id="order-1", name="chain", start=START)
    past = h.orchestrator_started().started().task_scheduled(0, names[0], 0).take()
    done = data.draw(st.integers(min_value=0, max_value=len(names) - 1))
    for index in range(done):
        h.orchestrator_started(at=timedelta(seconds=1)).task_completed(index, f"r{index}")
        h.task_scheduled(index + 1, names[index + 1], index + 1)
    past += h.take()
    new = h.orchestrator_started(at=timedelta(seconds=1)).task_completed(done, "last").take()
    assert execute(chain, past, new) == execute(chain, past, new)
    assert h.current_time > START
