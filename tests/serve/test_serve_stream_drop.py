"""A worker stream dropped while its SDK holds a work item: the item comes back at once, runs once more.

The SDK worker process is SIGKILLed while it holds exactly one work item (an orchestrator episode
stalled on a gate, or an activity still running). Its GetWorkItems stream drops; serve gives that
lease back immediately (the lease here is far longer than the test may take, so a return by expiry
would fail it), a second SDK worker runs the item, and history records every task exactly once.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from durabletask import client

from dtctl.core.history import TaskCompleted, TaskScheduled
from dtctl.hub import open_hub
from tests.helpers import wait_until
from tests.serve.harness import DTCTL, SdkWorker, Serve

LEASE_SECONDS = 120.0  # a return by lease expiry would be far too late for the deadlines below
RETURN_DEADLINE = 40.0


def serve_status(serve: Serve) -> dict[str, Any]:
    argv = [*DTCTL, "--json", "serve", "--status", "--port", str(serve.port)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _held(serve: Serve) -> tuple[int, int]:
    held = serve_status(serve)["items_held"]
    return held["orchestrations"], held["activities"]


def _tasks(hub_path: str, instance_id: str) -> tuple[list[int], list[int]]:
    hub = open_hub(hub_path)
    try:
        events = [r.event for r in hub.get_history(instance_id)]
    finally:
        hub.close()
    scheduled = [e.task_id for e in events if isinstance(e, TaskScheduled)]
    completed = [e.task_id for e in events if isinstance(e, TaskCompleted)]
    return scheduled, completed


def _finish_with_a_second_worker(
    serve: Serve, c: client.TaskHubGrpcClient, instance_id: str, logs: Path
) -> client.OrchestrationState:
    second = SdkWorker(serve.port, logs)
    try:
        started = time.monotonic()
        state = c.wait_for_orchestration_completion(instance_id, timeout=int(RETURN_DEADLINE))
        assert time.monotonic() - started < RETURN_DEADLINE
        assert state is not None and state.runtime_status == client.OrchestrationStatus.COMPLETED
        return state
    finally:
        second.stop()


def test_sdk_killed_while_holding_an_orchestrator_item(sqlite_hub: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    serve = Serve(sqlite_hub, logs, args=("--lease-seconds", str(LEASE_SECONDS)))
    first = SdkWorker(serve.port, logs)
    c = client.TaskHubGrpcClient(host_address=serve.address)
    gate = tmp_path / "gate"
    try:
        instance_id = c.schedule_new_orchestration("held", input=str(gate))
        wait_until(Path(f"{gate}.entered").exists, timeout=60, what="the SDK to hold the episode")
        assert _held(serve) == (1, 0)
        first.kill()
        wait_until(lambda: _held(serve) == (0, 0), timeout=RETURN_DEADLINE, what="the item to return")
        gate.touch()
        state = _finish_with_a_second_worker(serve, c, instance_id, logs)
        assert json.loads(state.serialized_output or "") == "Hello held!"
        assert _tasks(sqlite_hub, instance_id) == ([1], [1])  # the SDK numbers tasks from 1
    finally:
        first.stop()
        serve.stop()


def test_sdk_killed_while_holding_an_activity_item(sqlite_hub: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    serve = Serve(sqlite_hub, logs, args=("--lease-seconds", str(LEASE_SECONDS)))
    runs = tmp_path / "runs"
    runs.mkdir()
    first = SdkWorker(serve.port, logs, ACTIVITY_DELAY=3600, COUNT_DIR=runs)
    c = client.TaskHubGrpcClient(host_address=serve.address)
    try:
        instance_id = c.schedule_new_orchestration("chain")
        wait_until(lambda: any(runs.iterdir()), timeout=60, what="the first activity to be running")
        wait_until(lambda: _held(serve) == (0, 1), timeout=30, what="serve to count the held activity")
        first.kill()
        wait_until(lambda: _held(serve) == (0, 0), timeout=RETURN_DEADLINE, what="the item to return")
        state = _finish_with_a_second_worker(serve, c, instance_id, logs)
        greetings = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
        assert json.loads(state.serialized_output or "") == greetings
        assert _tasks(sqlite_hub, instance_id) == ([1, 2, 3], [1, 2, 3])
        assert len(list(runs.iterdir())) == 1  # the killed worker ran one activity (the second counts none)
    finally:
        first.stop()
        serve.stop()


def test_sdk_killed_while_holding_a_batch_of_activities(sqlite_hub: str, tmp_path: Path) -> None:
    """A fan-out's activities reach the stream as one batch; all of them come back when it drops."""
    count = 24  # more than the SDK runs at once (its thread pool), so some are held but not yet started
    logs = tmp_path / "logs"
    serve = Serve(sqlite_hub, logs, args=("--lease-seconds", str(LEASE_SECONDS)))
    runs = tmp_path / "runs"
    runs.mkdir()
    first = SdkWorker(serve.port, logs, ACTIVITY_DELAY=3600, COUNT_DIR=runs)
    c = client.TaskHubGrpcClient(host_address=serve.address)
    try:
        instance_id = c.schedule_new_orchestration("fan_out", input=count)
        wait_until(lambda: _held(serve) == (0, count), timeout=60, what="serve to hold the whole fan-out")
        wait_until(lambda: any(runs.iterdir()), timeout=60, what="the SDK to run the first activities")
        first.kill()
        wait_until(lambda: _held(serve) == (0, 0), timeout=RETURN_DEADLINE, what="the items to return")
        state = _finish_with_a_second_worker(serve, c, instance_id, logs)
        assert json.loads(state.serialized_output or "") == count
        scheduled, completed = _tasks(sqlite_hub, instance_id)
        assert sorted(scheduled) == sorted(completed) == list(range(1, count + 1))
    finally:
        first.stop()
        serve.stop()
