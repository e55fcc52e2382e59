"""The worker loop stepped in-process against a real SQLite hub (no sleeping: one step at a time)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dtctl
from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED, FAILED
from dtctl.hub import open_hub
from dtctl.hub.base import TaskHub
from dtctl.runtime.config import WorkerConfig
from dtctl.runtime.dispatcher import POISON_ERROR_TYPE
from dtctl.runtime.middleware import WorkContext
from dtctl.runtime.worker import Worker


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(tmp_path: Path, clock: Clock) -> Iterator[TaskHub]:
    opened = open_hub(str(tmp_path / "hub.db"), create=True, clock=clock)
    yield opened
    opened.close()


def make_app() -> dtctl.App:
    app = dtctl.App()

    @app.activity
    def double(ctx: dtctl.ActivityContext, n: int) -> int:
        return 2 * n

    @app.activity
    async def triple(ctx: dtctl.ActivityContext, n: int) -> int:
        return 3 * n

    @app.orchestrator
    def chain(ctx: dtctl.OrchestrationContext, n: int) -> Any:
        a = yield ctx.call_activity(double, input=n)
        b = yield ctx.call_activity(triple, input=a)
        return b

    return app


def run_until_idle(worker: Worker, *, max_steps: int = 500) -> None:
    """Step until nothing is left to do (activities run on threads: wait for each result)."""
    idle = 0
    for _ in range(max_steps):
        if worker.step():
            idle = 0
            continue
        if worker.has_inflight_activities():
            worker.wait_for_activity(5)
            continue
        idle += 1
        if idle >= 2:
            return
    raise AssertionError("the worker never went idle")


def new_worker(app: dtctl.App, hub: TaskHub, **settings: Any) -> Worker:
    # Stepped in this process on a virtual clock: suspects are not isolated here (tests/crash does that).
    settings.setdefault("isolate_suspects", False)
    config = WorkerConfig(hub="unused", app="unused", max_orchestrations=4, max_activities=2, **settings)
    return Worker(config, app, hub)


def test_chain_with_sync_and_async_activities(hub: TaskHub) -> None:
    client = TaskHubClient(hub)
    client.start_instance("chain", input=5, instance_id="c1")
    worker = new_worker(make_app(), hub)
    run_until_idle(worker)
    state = client.get_instance("c1")
    assert state is not None and state.status == COMPLETED
    assert client.decode_output(state) == 30


def test_warm_episodes_reuse_the_cache(hub: TaskHub) -> None:
    client = TaskHubClient(hub)
    client.start_instance("chain", input=1, instance_id="warm")
    worker = new_worker(make_app(), hub)
    loads: list[str] = []
    original = hub.load_history

    def counting_load(instance_id: str, execution_id: str) -> Any:
        loads.append(instance_id)
        return original(instance_id, execution_id)

    hub.load_history = counting_load  # type: ignore[method-assign]
    run_until_idle(worker)
    assert client.get_instance("warm").status == COMPLETED  # type: ignore[union-attr]
    assert loads == ["warm"], "only the first episode should load history; later ones resume warm"


def test_cache_is_not_trusted_when_history_changed_elsewhere(hub: TaskHub) -> None:
    client = TaskHubClient(hub)
    client.start_instance("chain", input=1, instance_id="moved")
    first = new_worker(make_app(), hub)
    first.step()  # episode 1: schedules double (cached by the first worker)
    other = new_worker(make_app(), hub)
    run_until_idle(other)  # another worker finishes the instance meanwhile
    assert client.get_instance("moved").status == COMPLETED  # type: ignore[union-attr]
    client.start_instance("chain", input=2, instance_id="moved", if_exists="replace")
    run_until_idle(first)
    state = client.get_instance("moved")
    assert state is not None and client.decode_output(state) == 12


def test_middleware_wraps_episodes_and_activities(hub: TaskHub) -> None:
    app = make_app()
    seen: list[tuple[str, str]] = []

    @app.use
    def record(work: WorkContext, call_next: Any) -> Any:
        seen.append((work.kind, work.name))
        return call_next()

    TaskHubClient(hub).start_instance("chain", input=1, instance_id="mw")
    run_until_idle(new_worker(app, hub))
    assert ("orchestration", "chain") in seen
    assert ("activity", "double") in seen and ("activity", "triple") in seen


def test_episode_that_keeps_failing_becomes_poison(hub: TaskHub, clock: Clock) -> None:
    app = make_app()

    @app.use
    def broken(work: WorkContext, call_next: Any) -> Any:
        if work.kind == "orchestration":
            raise RuntimeError("infrastructure is down")
        return call_next()

    client = TaskHubClient(hub)
    client.start_instance("chain", input=1, instance_id="poison")
    worker = new_worker(app, hub, max_dequeue=3)
    for _ in range(10):
        worker.step()
        clock.advance(60)  # abandoned items come back after a backoff
    state = client.get_instance("poison")
    assert state is not None and state.status == FAILED
    assert state.failure is not None and state.failure.error_type == POISON_ERROR_TYPE
    assert "leased 4 times" in state.failure.message


def test_activity_leased_too_often_fails_as_poison(hub: TaskHub, clock: Clock) -> None:
    client = TaskHubClient(hub)
    client.start_instance("chain", input=1, instance_id="crashy")
    worker = new_worker(make_app(), hub, max_dequeue=2)
    assert worker.step()  # the first episode schedules `double`; step() leases no activity after it
    assert [i.name for i in hub.pending_activities("crashy") if i.lease_owner is None] == ["double"]
    for _ in range(3):  # three workers that leased it and died
        assert hub.lease_activities("ghost", None, limit=1, lease_seconds=1)
        clock.advance(5)
    run_until_idle(worker)
    state = client.get_instance("crashy")
    assert state is not None and state.status == FAILED
    assert "double" in (state.failure.message if state.failure else "")


def _task_events(hub: TaskHub, instance_id: str) -> list[str]:
    return [r.event.kind for r in hub.get_history(instance_id) if r.event.kind.startswith("task_")]


def test_a_result_whose_lease_was_lost_is_refused_by_the_commit(hub: TaskHub, clock: Clock) -> None:
    client = TaskHubClient(hub)
    client.start_instance("chain", input=1, instance_id="stolen")
    worker = new_worker(make_app(), hub, lease_seconds=5)
    assert worker.step()  # episode 1 schedules `double`
    assert worker.step()  # leases and starts it
    while worker.has_inflight_activities() and not worker.step():
        worker.wait_for_activity(5)
    # That step committed the result of `double`, leased the instance again and ran episode 2.
    assert _task_events(hub, "stolen") == ["task_scheduled", "task_completed", "task_scheduled"]
    assert worker.step()  # leases `triple` and starts it
    assert worker.has_inflight_activities()
    clock.advance(60)
    (stolen,) = hub.lease_activities("thief", None, limit=1, lease_seconds=60)
    while not worker.step():  # commits the result of `triple` with a lease token no longer valid
        worker.wait_for_activity(5)
    assert _task_events(hub, "stolen") == ["task_scheduled", "task_completed", "task_scheduled"]
    assert [i.lease_owner for i in hub.pending_activities("stolen")] == ["thief"]
    assert stolen.name == "triple"


def test_a_drain_commits_finished_results_and_gives_every_lease_back(hub: TaskHub) -> None:
    client = TaskHubClient(hub)
    client.start_instance("chain", input=2, instance_id="drained")
    worker = new_worker(make_app(), hub)
    assert worker.step()  # episode 1 schedules `double`
    assert worker.step()  # leases and starts it
    worker.request_stop()
    assert worker.run() == 0  # nothing new is leased; the in-flight result is committed, then released
    assert [m.event.kind for m in hub.pending_messages("drained")] == ["task_completed"]
    assert hub.pending_activities("drained") == []
    state = client.get_instance("drained")
    assert state is not None and state.lease_owner is None
    assert hub.list_workers() == []
