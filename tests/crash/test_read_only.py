"""A SQLite hub on a read-only mount or file: reads work, writes say why they cannot, workers stop.

Root passes permission bits, so the read-only cases are real read-only bind mounts (skipped where
mounting is not permitted): a directory mounted read-only (with and without -wal/-shm files left by
running workers), and the hub file alone mounted read-only in a writable directory.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.errors import ExitCode
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, dtctl, wait_until

APP = "tests/apps/gated.py:app"
View = Callable[[Path, Path], Path]


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")


@pytest.fixture
def read_only_view() -> Iterator[View]:
    """``view(source, target)``: ``target`` becomes a read-only view of ``source`` (a directory or file)."""
    mounted: list[Path] = []

    def view(source: Path, target: Path) -> Path:
        if source.is_dir():
            target.mkdir(exist_ok=True)
        _mount("--bind", str(source), str(target))
        mounted.append(target)
        _mount("-o", "remount,bind,ro", str(target))
        return target

    yield view
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


def _finished_hub(directory: Path, tmp_path: Path) -> Path:
    """A hub with one completed instance, closed cleanly (no -wal left)."""
    hub_path = directory / "hub.db"
    with _client(hub_path) as client:
        client.start_instance("chain", input=2, instance_id="done")
    worker = WorkerProcess(hub_path, APP, tmp_path / "logs", burst=True)
    assert worker.wait(60) == 0, worker.log()
    return hub_path


def _client(hub_path: Path) -> TaskHubClient:
    open_hub(str(hub_path), create=True).close()
    return TaskHubClient(str(hub_path))


def test_read_only_mount_reads_work_and_writes_exit_10(tmp_path: Path, read_only_view: View) -> None:
    source = tmp_path / "rw"
    source.mkdir()
    _finished_hub(source, tmp_path)
    assert not (source / "hub.db-wal").exists()
    view = read_only_view(source, tmp_path / "ro")
    hub = view / "hub.db"

    status = dtctl("status", "done", "--json", hub=hub)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == COMPLETED
    listed = dtctl("list", "--json", hub=hub)
    assert listed.returncode == 0, listed.stderr

    doctor = dtctl("doctor", "--json", hub=hub)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    permissions = next(f for f in json.loads(doctor.stdout)["findings"] if f["check"] == "permissions")
    assert "read-only" in permissions["message"], permissions

    write = dtctl("start-instance", "chain", "--input", "1", "--id", "new", hub=hub)
    assert write.returncode == ExitCode.READ_ONLY, write.stderr
    assert "mounted read-only" in write.stderr and "dtctl init" not in write.stderr, write.stderr

    started = time.monotonic()
    worker = dtctl("worker", APP, "--burst", hub=hub, timeout=60)
    assert worker.returncode == ExitCode.READ_ONLY, worker.stderr
    assert "mounted read-only" in worker.stderr
    assert time.monotonic() - started < 30  # stopped, not restarted again and again


def test_read_only_view_of_a_hub_being_written(tmp_path: Path, read_only_view: View) -> None:
    source = tmp_path / "rw"
    source.mkdir()
    hub_rw = source / "hub.db"
    gate = tmp_path / "gate"
    with _client(hub_rw) as client:
        client.start_instance("gated_workflow", input=str(gate), instance_id="live")
    worker = WorkerProcess(hub_rw, APP, tmp_path / "logs", lease_seconds=2.0)
    try:
        wait_until(lambda: (source / "hub.db-wal").exists(), what="the worker to open the hub")
        view = read_only_view(source, tmp_path / "ro")
        gate.touch()
        with TaskHubClient(str(hub_rw)) as client:
            assert client.wait_for_completion("live", timeout=60).status == COMPLETED
        status = dtctl("status", "live", "--json", hub=view / "hub.db")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["status"] == COMPLETED  # read through the -wal
    finally:
        worker.stop()


def test_read_only_hub_file_stops_the_worker(tmp_path: Path, read_only_view: View) -> None:
    hub = _finished_hub(tmp_path, tmp_path)
    with TaskHubClient(str(hub)) as client:
        client.start_instance("chain", input=1, instance_id="waiting")
    read_only_view(hub, hub)  # the file alone; its directory stays writable

    status = dtctl("status", "waiting", "--json", hub=hub)
    assert status.returncode == 0, status.stderr
    started = time.monotonic()
    worker = dtctl("worker", APP, "--burst", hub=hub, timeout=60)
    assert worker.returncode == ExitCode.READ_ONLY, worker.stderr
    assert "read-only" in worker.stderr
    assert time.monotonic() - started < 30
    assert json.loads(dtctl("status", "waiting", "--json", hub=hub).stdout)["status"] == "PENDING"
