"""SIGKILL a real worker at each dangerous point; another worker must finish with nothing lost.

Each fault point is armed in a real worker process through ``DTCTL_FAULT``; the test checks the process
really died by SIGKILL there, then lets a clean worker take over after the leases expire, and checks
the invariants of DESIGN §11 (exactly one completion per scheduled task, no lease left, integrity ok).
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, all_instances, all_terminal, check_invariants, wait_until

APP = "tests/apps/gated.py:app"
FAULT_POINTS = [
    "orchestration.leased",
    "episode.before_checkpoint",
    "checkpoint.before_commit",
    "checkpoint.after_commit",
    "activity.leased",
    "activity.ran",
    "activity.before_commit",
]


def _start_workload(hub_path: Path) -> dict[str, object]:
    expected: dict[str, object] = {}
    with TaskHubClient(str(hub_path)) as client:
        for i in range(4):
            expected[client.start_instance("chain", input=3, instance_id=f"chain-{i}")] = 3
        expected[client.start_instance("fan", input=6, instance_id="fan")] = sum(range(1, 7))
        expected[client.start_instance("parent", input=2, instance_id="parent")] = 4
    return expected


def _finish_and_check(hub_path: Path, tmp_path: Path, expected: dict[str, object]) -> None:
    total = len(expected) + 2  # the parent's two sub-orchestrations
    rescuer = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=1.0)
    try:
        wait_until(lambda: all_terminal(hub_path, total), timeout=60, what="every instance to finish")
    finally:
        rescuer.stop()
    check_invariants(hub_path)
    with TaskHubClient(str(hub_path)) as client:
        for instance_id, output in expected.items():
            state = client.get_instance(instance_id)
            assert state is not None and state.status == COMPLETED, state.failure if state else None
            assert client.decode_output(state) == output


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    path = tmp_path / "hub.db"
    open_hub(str(path), create=True).close()
    return path


@pytest.mark.parametrize("fault", FAULT_POINTS)
def test_sigkill_at_fault_point_loses_nothing(hub_path: Path, tmp_path: Path, fault: str) -> None:
    expected = _start_workload(hub_path)
    victim = WorkerProcess(hub_path, APP, tmp_path / "logs", fault=f"{fault}@2", lease_seconds=1.0)
    code = victim.wait(timeout=60)
    assert code == -signal.SIGKILL, (
        f"the fault point {fault} was never reached (exit {code}):\n{victim.log()}"
    )
    _finish_and_check(hub_path, tmp_path, expected)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sigkills_lose_nothing(hub_path: Path, tmp_path: Path, seed: int) -> None:
    """Kill workers again and again after a random amount of progress; then let one finish."""
    rng = random.Random(seed)
    expected = _start_workload(hub_path)

    def progress() -> int:
        hub = open_hub(str(hub_path))
        try:
            return sum(i.history_length for i in all_instances(hub))
        finally:
            hub.close()

    total = len(expected) + 2
    for _ in range(6):
        if all_terminal(hub_path, total):
            break  # the workload finished between kills; the invariants still have to hold
        before = progress()
        victim = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=1.0)
        target = before + rng.randint(1, 12)
        try:
            wait_until(
                lambda v=victim, t=target: progress() >= t or not v.alive() or all_terminal(hub_path, total),
                timeout=30,
                what="progress",
            )
        finally:
            victim.kill()
    _finish_and_check(hub_path, tmp_path, expected)
