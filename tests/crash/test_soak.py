"""The random SIGKILL soak: kill worker processes again and again over a mixed workload.

Each round starts a real worker, lets it make a random amount of progress (1-12 history events, or
until it dies), and SIGKILLs it; then a last worker finishes. Nothing may be lost or duplicated: every
instance completes with its expected output, every scheduled task has exactly one completion, no lease
is left, and ``PRAGMA integrity_check`` is ok. The workload grows with the number of kills so that
there is work left to interrupt.

``DTCTL_SOAK_KILLS`` sets the number of kills (default 30, a couple of minutes);
``DTCTL_SOAK_KILLS=500`` is the long soak (about 10-20 minutes on 2 busy cores).
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, all_terminal, check_invariants, wait_until

APP = "tests/apps/gated.py:app"
KILLS = int(os.environ.get("DTCTL_SOAK_KILLS", "30"))
# The poison limit is raised far above the kills one item can meet: an item leased again and again
# by workers killed around it is failed as poison by design (tests/crash/test_isolation.py); here
# every worker is killed, and the question is only whether anything is lost or duplicated.
PATIENT = {"max_dequeue": 1000}
ONE_AT_A_TIME: dict[str, Any] = {"max_orchestrations": 1, "max_activities": 2, **PATIENT}


def _workload(client: TaskHubClient, kills: int, batch: int = 0) -> tuple[dict[str, int], int]:
    """A batch of the mixed workload: expected outputs by instance id, and how many instances it makes
    in all (each parent starts two sub-orchestrations)."""
    expected: dict[str, int] = {}
    for i in range(max(4, 2 * kills)):
        expected[client.start_instance("chain", input=3, instance_id=f"chain-{batch}-{i}")] = 3
    parents = max(1, kills // 20)
    for i in range(parents):
        fan = client.start_instance("fan", input=6, instance_id=f"fan-{batch}-{i}")
        expected[fan] = sum(range(1, 7))
        expected[client.start_instance("parent", input=2, instance_id=f"parent-{batch}-{i}")] = 4
    return expected, len(expected) + 2 * parents


def _progress(hub_path: Path) -> tuple[int, int]:
    """(history events so far, instances not finished), read straight from the file (polled often)."""
    with contextlib.closing(sqlite3.connect(f"file:{hub_path}?mode=ro", uri=True)) as db:
        events, unfinished = db.execute(
            "SELECT COALESCE(SUM(history_length), 0), COALESCE(SUM(status <> 'COMPLETED'), 0) FROM instances"
        ).fetchone()
    return int(events), int(unfinished)


def _moved(hub_path: Path, target: int) -> bool:
    events, unfinished = _progress(hub_path)
    return events >= target or not unfinished


@pytest.mark.slow
@pytest.mark.timeout(max(300, 6 * KILLS))  # about a second per kill; the default 300 s bounds 30
def test_random_sigkill_soak_loses_nothing(tmp_path: Path) -> None:
    hub_path = tmp_path / "hub.db"
    open_hub(str(hub_path), create=True).close()
    with TaskHubClient(str(hub_path)) as client:
        expected, total = _workload(client, KILLS)
    rng = random.Random(KILLS)
    kills = batches = 0
    while kills < KILLS:
        before, unfinished = _progress(hub_path)
        if not unfinished:
            # A fast machine finished the work before every kill was spent: more work to interrupt.
            batches += 1
            with TaskHubClient(str(hub_path)) as client:
                more, count = _workload(client, KILLS - kills, batches)
            expected |= more
            total += count
            continue
        # One item at a time: each commit moves history by a few events, so the random kill lands
        # anywhere (a lease, an episode, an activity, a commit), not once per large batch.
        victim = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=1.0, **ONE_AT_A_TIME)
        target = before + rng.randint(1, 12)
        try:
            wait_until(
                lambda v=victim, t=target: not v.alive() or _moved(hub_path, t),  # type: ignore[misc]
                timeout=60,
                interval=0.05,
                what="progress",
            )
        finally:
            victim.kill()
        kills += 1
    rescuer = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=1.0, **PATIENT)
    try:
        wait_until(lambda: all_terminal(hub_path, total), timeout=600, what="every instance to finish")
    finally:
        rescuer.stop()
    print(f"soak: {kills} SIGKILLs over {len(expected)} instances")
    check_invariants(hub_path)
    with TaskHubClient(str(hub_path)) as client:
        for instance_id, output in expected.items():
            state = client.get_instance(instance_id)
            assert state is not None and state.status == COMPLETED, (instance_id, state and state.failure)
            assert client.decode_output(state) == output
    assert kills == KILLS
