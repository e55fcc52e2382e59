"""The history builders users get in dtctl.testing."""

from __future__ import annotations

from datetime import datetime, timedelta

from dtctl.core.history import (
    EVENT_TYPES,
    ExecutionStarted,
    TaskCompleted,
    TaskFailed,
    TimerFired,
    decode_event,
    encode_event,
)
from dtctl.testing import HistoryBuilder, failure_of


def _every_kind(h: HistoryBuilder) -> HistoryBuilder:
    h.orchestrator_started().started({"a": 1}, parent_instance_id="p", parent_task_id=3)
    h.task_scheduled(0, "charge", [1]).task_completed(0, "ok").task_failed(1, ValueError("x"))
    h.timer_created(2, timedelta(seconds=5)).timer_fired(2).timer_cancelled(2)
    h.event_raised("go", {"k": "v"}).event_sent(3, "other", "ping", 1)
    h.sub_orchestration_created(4, "child", 2).sub_orchestration_completed(4, 3)
    h.sub_orchestration_failed(5, failure_of(KeyError("k")))
    h.entity_operation_called(6, "@counter@a", "add", 1).entity_operation_completed(6, 2)
    h.entity_operation_signaled(7, "@counter@a", "reset", fire_at=timedelta(seconds=3))
    h.entity_lock_requested(8, ["@acct@b", "@acct@a", "@acct@b"]).entity_lock_granted(8)
    h.entity_operation_failed(9, ValueError("no")).entity_unlock_sent(10, ["@acct@a", "@acct@b"])
    h.suspended("s").resumed("r").terminated("t", recursive=False).generic("wake").rewound("r", "e0")
    return h.completed("done").failed(RuntimeError("f")).continued_as_new(1, "e2")


def test_the_builder_makes_every_event_kind() -> None:
    events = _every_kind(HistoryBuilder()).build()
    assert {event.kind for event in events} == set(EVENT_TYPES)
    assert [decode_event(encode_event(event)) for event in events] == events


def test_payloads_are_encoded_and_times_follow_the_builder_clock() -> None:
    h = HistoryBuilder("i", "orch", start=datetime(2024, 3, 1))
    h.orchestrator_started().started({"a": 1})
    h.orchestrator_started(at=timedelta(seconds=2)).task_completed(0, [1, 2])
    h.orchestrator_started(at=datetime(2024, 3, 2)).timer_fired(9, datetime(2024, 3, 2))
    started, completed, fired = (e for e in h.build() if not e.kind.startswith("orchestrator"))
    assert isinstance(started, ExecutionStarted) and started.input == '{"a":1}'
    assert isinstance(completed, TaskCompleted) and completed.result == "[1,2]"
    assert completed.timestamp - started.timestamp == 2_000_000
    assert isinstance(fired, TimerFired) and fired.fire_at == fired.timestamp
    assert h.current_time == datetime(2024, 3, 2)


def test_take_returns_what_was_added_since_the_last_take() -> None:
    h = HistoryBuilder()
    first = h.orchestrator_started().started().take()
    second = h.task_failed(0, ValueError("no")).take()
    assert [e.kind for e in first] == ["orchestrator_started", "execution_started"]
    assert len(second) == 1 and isinstance(second[0], TaskFailed)
    assert second[0].failure.error_type == "builtins.ValueError"
    assert h.take() == []
    assert len(h.build()) == 3
