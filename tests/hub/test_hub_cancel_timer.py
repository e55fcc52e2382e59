"""Conformance: a CancelTimer action deletes the cancelled timer's pending timer_fired in the checkpoint."""

from __future__ import annotations

from dtctl.core.decision import CancelTimer, CreateTimer
from dtctl.core.history import TimerFired
from dtctl.hub.base import TaskHub
from tests.hub.conftest import StepClock
from tests.hub.hub_helpers import kinds, lease, start, step

SECOND = 1_000_000


def _timers(hub: TaskHub, instance_id: str) -> list[int]:
    return [m.event.task_id for m in hub.pending_messages(instance_id) if isinstance(m.event, TimerFired)]


def test_a_cancelled_timer_never_wakes_the_instance(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a", "b")
    fire_at = clock() + 5 * SECOND
    step(hub, "a", actions=[CreateTimer(task_id=0, fire_at=fire_at), CreateTimer(task_id=1, fire_at=fire_at)])
    step(hub, "b", actions=[CreateTimer(task_id=0, fire_at=fire_at)])
    hub.raise_event("a", "approval", "true")
    step(hub, "a", actions=[CancelTimer(task_id=0)])
    assert _timers(hub, "a") == [1]
    assert _timers(hub, "b") == [0]  # same task id, another instance: untouched
    hub.raise_event("a", "approval", "true")
    step(hub, "a", actions=[CancelTimer(task_id=1)])
    assert _timers(hub, "a") == []
    clock.advance(10)
    leased = [item.instance_id for item in hub.lease_orchestrations("w2", None, limit=10, lease_seconds=30)]
    assert leased == ["b"]  # no episode for "a": nothing it waits for is left
    history = kinds([r.event for r in hub.get_history("a")])
    assert history.count("timer_cancelled") == 2
    assert "timer_fired" not in history


def test_cancelling_a_timer_whose_fired_event_is_consumed_in_the_same_episode(
    hub: TaskHub, clock: StepClock
) -> None:
    start(hub, "a")
    step(hub, "a", actions=[CreateTimer(task_id=0, fire_at=clock() + SECOND)])
    clock.advance(2)
    hub.raise_event("a", "approval", "true")
    item = lease(hub, "a")
    assert sorted(m.event.kind for m in item.messages) == ["event_raised", "timer_fired"]
    hub.abandon_orchestration(item)
    # the code cancelled the timer on the event; its TimerFired, leased with the event, is ignored
    step(hub, "a", actions=[CancelTimer(task_id=0)])
    assert hub.pending_messages("a") == []
    history = kinds([r.event for r in hub.get_history("a")])
    assert sorted(history[-3:-1]) == ["event_raised", "timer_fired"]
    assert history[-1] == "timer_cancelled"
