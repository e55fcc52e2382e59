"""Kill the processes of an SDK deployment at the worst moments: nothing is lost or duplicated.

- SIGKILL of ``dtctl serve`` while SDK work items are held: the SDK worker reconnects to a restarted
  serve; the dead serve's leases expire and the items run again; every instance completes once.
- SIGKILL of the SDK worker process: its stream drops, serve gives its leases back at once, and a new
  worker finishes the work.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from durabletask import client

from dtctl.core.history import TaskCompleted, TaskScheduled
from dtctl.hub import open_hub
from tests.helpers import wait_until
from tests.serve.harness import SdkWorker, Serve

LEASE = "2"


def _all_completed(c: client.TaskHubGrpcClient, ids: list[str]) -> bool:
    states = [c.get_orchestration_state(i) for i in ids]
    return all(s is not None and s.runtime_status == client.OrchestrationStatus.COMPLETED for s in states)


def _check_histories(hub_path: str, ids: list[str], tasks: int) -> None:
    hub = open_hub(hub_path)
    try:
        for instance_id in ids:
            events = [r.event for r in hub.get_history(instance_id)]
            scheduled = [e.task_id for e in events if isinstance(e, TaskScheduled)]
            completed = [e.task_id for e in events if isinstance(e, TaskCompleted)]
            assert sorted(scheduled) == sorted(set(scheduled)) and len(scheduled) == tasks, instance_id
            assert sorted(completed) == sorted(scheduled), instance_id
    finally:
        hub.close()


def test_sigkill_serve_mid_run(sqlite_hub: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    serve = Serve(sqlite_hub, logs, args=("--lease-seconds", LEASE))
    worker = SdkWorker(serve.port, logs, ACTIVITY_DELAY=0.05, COUNT_DIR=tmp_path)
    c = client.TaskHubGrpcClient(host_address=serve.address)
    try:
        ids = [c.schedule_new_orchestration("chain") for _ in range(40)]
        wait_until(lambda: len(list(tmp_path.glob("*.*.*"))) >= 20, timeout=60, what="work in progress")
        serve.kill()
        restarted = Serve(sqlite_hub, logs, port=serve.port, args=("--lease-seconds", LEASE))
        try:
            wait_until(
                lambda: _all_completed(c, ids), timeout=120, interval=0.5, what="all instances to complete"
            )
            for instance_id in ids:
                state = c.get_orchestration_state(instance_id)
                assert state is not None
                assert json.loads(state.serialized_output or "") == [
                    "Hello Tokyo!",
                    "Hello Seattle!",
                    "Hello London!",
                ]
            _check_histories(sqlite_hub, ids, 3)
        finally:
            restarted.stop()
    finally:
        worker.stop()
        serve.stop()


@pytest.mark.parametrize("orchestration", ["fan_out"])
def test_sigkill_sdk_worker_mid_run(sqlite_hub: str, tmp_path: Path, orchestration: str) -> None:
    logs = tmp_path / "logs"
    serve = Serve(sqlite_hub, logs, args=("--lease-seconds", LEASE))
    first = SdkWorker(serve.port, logs, ACTIVITY_DELAY=0.5, COUNT_DIR=tmp_path)
    c = client.TaskHubGrpcClient(host_address=serve.address)
    second = None
    try:
        ids = [c.schedule_new_orchestration(orchestration, input=20) for _ in range(3)]
        wait_until(lambda: len(list(tmp_path.glob("*.*.*"))) >= 5, timeout=60, what="activities running")
        first.kill()
        second = SdkWorker(serve.port, logs)
        wait_until(
            lambda: _all_completed(c, ids), timeout=120, interval=0.5, what="all instances to complete"
        )
        for instance_id in ids:
            state = c.get_orchestration_state(instance_id)
            assert state is not None and json.loads(state.serialized_output or "") == 20
        _check_histories(sqlite_hub, ids, 20)
    finally:
        if second is not None:
            second.stop()
        first.stop()
        serve.stop()
