"""A process stopped inside a write transaction freezes a SQLite hub: dtctl names it, workers wait.

SQLite cannot break another process's lock. The holder here is a real process that opens the hub,
takes the write lock (``BEGIN IMMEDIATE`` and a write) and stops itself with SIGSTOP, as a worker
under a debugger or a frozen container would. ``doctor`` must name its pid and state, a CLI write must
say who holds the lock, a running worker must wait in place (same pid) and carry on once the holder
is ended.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from tests.helpers import REPO, WorkerProcess, check_invariants, child_env, dtctl, wait_until

APP = "tests/apps/gated.py:app"
HOLDER = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE instances SET updated_at = updated_at")
os.kill(os.getpid(), signal.SIGSTOP)
conn.execute("COMMIT")
"""


def _process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    path = tmp_path / "hub.db"
    open_hub(str(path), create=True).close()
    return path


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_stopped_lock_holder_is_named_and_workers_wait_for_it(hub_path: Path, tmp_path: Path) -> None:
    with TaskHubClient(str(hub_path)) as client:
        for i in range(3):
            client.start_instance("chain", input=2, instance_id=f"before-{i}")
    worker = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=2.0, heartbeat_seconds=0.5)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(hub_path)], cwd=REPO, env=child_env())
    try:
        wait_until(lambda: _process_state(holder.pid) == "T", what="the lock holder to stop itself")

        doctor = dtctl("doctor", "--json", hub=hub_path)
        report = json.loads(doctor.stdout)
        lock = next(f for f in report["findings"] if f["check"] == "write-lock")
        assert lock["severity"] == "problem", lock
        assert f"pid {holder.pid}" in lock["message"] and "stopped" in lock["message"], lock
        assert f"kill -CONT {holder.pid}" in lock["hint"]
        assert doctor.returncode == 8
        top = json.loads(dtctl("top", "--once", "--json", hub=hub_path).stdout)
        assert f"pid {holder.pid}" in top["write_lock_stalled"] and "stopped" in top["write_lock_stalled"]

        write = dtctl("start-instance", "chain", "--input", "1", "--id", "during", hub=hub_path)
        assert write.returncode == 6, write.stderr
        assert f"pid {holder.pid}" in write.stderr and "stopped" in write.stderr, write.stderr

        wait_until(lambda: "hub unavailable" in worker.log(), timeout=60, what="the worker to wait")
        assert worker.alive(), worker.log()
        pid = worker.pid
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # its transaction is rolled back; the hub goes on
        holder.wait()
    try:
        with TaskHubClient(str(hub_path)) as client:
            client.start_instance("chain", input=2, instance_id="after")
            for instance_id in ("before-0", "before-1", "before-2", "after"):
                assert client.wait_for_completion(instance_id, timeout=60).status == COMPLETED
        assert worker.alive() and worker.pid == pid
        assert "hub answers again" in worker.log()
    finally:
        worker.stop()
    check_invariants(hub_path)
