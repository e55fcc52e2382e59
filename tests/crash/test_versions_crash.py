"""SIGKILL of a versioned worker in the middle of a mixed-version run: nothing lost, nothing duplicated,
and no instance ever runs on a worker of another version."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, all_terminal, check_invariants, wait_until

APP = "tests/apps/versioned.py:app"
PER_VERSION = 15
STEPS = 6


def _completed_steps(hub_path: Path) -> int:
    with TaskHubClient(str(hub_path)) as client:
        return sum(
            1
            for state in client.list_instances(limit=1000).instances
            for r in client.get_history(state.instance_id)
            if r.event.kind == "task_completed"
        )


def _unfinished_old(hub_path: Path) -> int:
    with TaskHubClient(str(hub_path)) as client:
        page = client.list_instances(prefix="a", limit=1000)
        return sum(1 for s in page.instances if s.status != COMPLETED)


def test_sigkill_of_a_strict_worker_mid_run_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_path = tmp_path / "hub.db"
    open_hub(str(hub_path), create=True).close()
    runs = tmp_path / "runs.txt"
    with TaskHubClient(str(hub_path)) as client:
        for n in range(PER_VERSION):
            client.start_instance("versioned_chain", input=STEPS, instance_id=f"a{n:02d}", version="1.0")
            client.start_instance("versioned_chain", input=STEPS, instance_id=f"b{n:02d}", version="2.0")
    logs = tmp_path / "logs"
    settings = {"lease_seconds": 2.0, "max_orchestrations": 4, "max_activities": 2}
    monkeypatch.setenv("DTCTL_TEST_RUNS", str(runs))  # the workers inherit it (child_env)
    old = WorkerProcess(hub_path, APP, logs, version="1.0", version_match="strict", **settings)
    new = WorkerProcess(hub_path, APP, logs, version="2.0", version_match="strict", **settings)
    try:
        wait_until(lambda: _completed_steps(hub_path) >= 6, what="work in flight on both workers")
        old.kill()
        assert _unfinished_old(hub_path) > 0  # killed in the middle of the old instances
        again = WorkerProcess(hub_path, APP, logs, version="1.0", version_match="strict", **settings)
        try:
            wait_until(lambda: all_terminal(hub_path, 2 * PER_VERSION), timeout=120, what="every instance")
        finally:
            again.stop()
    finally:
        new.stop()
    check_invariants(hub_path)
    with TaskHubClient(str(hub_path)) as client:
        for state in client.list_instances(limit=100, include_payloads=True).instances:
            assert state.status == COMPLETED, (state.instance_id, state.failure)
            out = client.decode_output(state)
            path = "old" if state.instance_id.startswith("a") else "new"
            assert out == {
                "version": state.version,
                "path": path,
                "steps": [f"{path}-{i}" for i in range(STEPS)],
            }
    bodies = runs.read_text().splitlines()
    assert len(set(bodies)) == 2 * PER_VERSION * STEPS  # every step ran (at least once)
