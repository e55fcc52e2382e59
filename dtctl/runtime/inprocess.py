"""Run an orchestration to the end inside the test process, on a throw-away hub, with skipped time.

This is what ``dtctl.testing.run_orchestration`` uses: the real hub, the real worker loop and the real
replay engine, stepped in this process. The hub's clock is virtual: whenever the worker runs out of
visible work while the instance waits for a durable timer, the clock jumps to that timer's due time, so
an orchestration that sleeps for a day finishes in milliseconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dtctl.core.app import App, function_name
from dtctl.core.history import TERMINAL_STATUSES, TimerFired
from dtctl.errors import WaitTimeout
from dtctl.hub import open_hub
from dtctl.hub.base import InstanceQuery, InstanceState, TaskHub
from dtctl.runtime.config import WorkerConfig
from dtctl.runtime.worker import Worker


class VirtualClock:
    """The hub's clock in tests: starts at the real time, moves only when told to."""

    def __init__(self, start_us: int) -> None:
        self.now = start_us

    def __call__(self) -> int:
        return self.now

    def advance_to(self, moment_us: int) -> None:
        self.now = max(self.now, moment_us)


def run_orchestration(
    app: App,
    orchestrator: Any,
    input: Any = None,
    *,
    instance_id: str = "test-instance",
    events: Iterable[tuple[str, Any]] = (),
    max_steps: int = 100_000,
    hub_dir: str | Path | None = None,
) -> InstanceState:
    """Start ``orchestrator`` with ``input``, raise ``events`` (buffered until awaited), run to the end.

    Returns the final instance state (``status``, ``output``, ``failure``…; decode the output with
    ``dtctl.core.payload.decode``). Raises :class:`~dtctl.errors.WaitTimeout` when the instance waits for
    something that can never come (an external event nobody raised) or ``max_steps`` run out.
    """
    from dtctl.client import TaskHubClient

    with tempfile.TemporaryDirectory(dir=hub_dir) as folder:
        import time

        clock = VirtualClock(time.time_ns() // 1000)
        hub = open_hub(Path(folder) / "test-hub.db", create=True, synchronous="normal", clock=clock)
        client = TaskHubClient(hub, data_converter=app.data_converter)
        try:
            client.start_instance(function_name(orchestrator), input=input, instance_id=instance_id)
            for name, data in events:
                client.raise_event(instance_id, name, data)
            # Nothing to isolate in-process (a crash is the test's own); a child would not share the clock.
            config = WorkerConfig(hub=folder, app="in-process", isolate_suspects=False)
            worker = Worker(config, app, hub)
            return _drive(worker, hub, clock, instance_id, max_steps)
        finally:
            client.close()


def _drive(
    worker: Worker, hub: TaskHub, clock: VirtualClock, instance_id: str, max_steps: int
) -> InstanceState:
    for _ in range(max_steps):
        if worker.step():
            continue
        if worker.has_inflight_activities():
            worker.wait_for_activity(timeout=60.0)
            continue
        state = hub.get_instance(instance_id)
        if state is not None and state.status in TERMINAL_STATUSES:
            return state
        due = _next_timer(hub)
        if due is None:
            raise WaitTimeout(
                f"instance {instance_id!r} is waiting for something that never comes "
                f"(status {state.status if state else 'missing'}): an external event nobody raised?"
            )
        clock.advance_to(due)
    raise WaitTimeout(f"instance {instance_id!r} did not finish within {max_steps} worker steps")


def _next_timer(hub: TaskHub) -> int | None:
    """The earliest due time of a pending timer of any live instance (sub-orchestrations included)."""
    due: list[int] = []
    page = hub.list_instances(InstanceQuery(limit=10_000))
    for state in page.instances:
        if state.status in TERMINAL_STATUSES:
            continue
        for message in hub.pending_messages(state.instance_id):
            if isinstance(message.event, TimerFired):
                due.append(message.event.fire_at)
        for task in hub.pending_activities(state.instance_id):
            if task.visible_at is not None:
                due.append(task.visible_at)
    return min(due) if due else None
