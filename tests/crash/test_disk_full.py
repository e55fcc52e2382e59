"""A full disk under a SQLite hub: exit 9, workers wait in place, ~1 MB freed lets everything recover.

The hub lives on a real 8 MB tmpfs (mounted for the test; skipped where mounting is not permitted).
Ten activities are held in flight, the file system is filled to the last byte, and the activities are
released: their results cannot be committed. The worker must stay up (same pid) and wait, a CLI write
must exit 9 with a clear message, ``doctor`` must report the free space; after 1 MB is freed, every
instance completes and the database is intact.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.errors import ExitCode
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, check_invariants, dtctl, wait_until

APP = "tests/apps/held.py:app"
MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> list[Path]:
    """Fill the file system: 1 MiB files, then one file taking the last bytes."""
    fillers: list[Path] = []
    chunk = b"\0" * MIB
    for size in [MIB] * 64 + [64 * 1024] * 16 + [4096] * 16:
        path = disk / f"filler-{len(fillers)}"
        try:
            with path.open("wb") as handle:
                handle.write(chunk[:size])
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            path.unlink(missing_ok=True)
            continue
        fillers.append(path)
    return fillers


def _doctor_disk(hub: Path) -> dict[str, str]:
    report = json.loads(dtctl("doctor", "--json", hub=hub).stdout)
    return next(f for f in report["findings"] if f["check"] == "disk-space")


def test_full_disk_pauses_workers_and_recovers_after_1mb(small_disk: Path, tmp_path: Path) -> None:
    hub_path = small_disk / "hub.db"
    open_hub(str(hub_path), create=True).close()
    gate = tmp_path / "gate"
    ids = [f"held-{i}" for i in range(10)]
    with TaskHubClient(str(hub_path)) as client:
        for instance_id in ids:
            client.start_instance("held_workflow", input=str(gate), instance_id=instance_id)
    runs = tmp_path / "runs"
    os.environ["DTCTL_TEST_RUNS"] = str(runs)
    try:
        worker = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=2.0, heartbeat_seconds=0.5)
    finally:
        del os.environ["DTCTL_TEST_RUNS"]
    try:
        wait_until(lambda: runs.exists() and len(runs.read_text().split()) >= 10, what="ten held activities")
        fillers = _fill(small_disk)
        gate.touch()  # the results are ready; the disk has no room for them
        wait_until(
            lambda: "disk is full" in worker.log(), timeout=60, what="the worker to meet the full disk"
        )

        write = dtctl("start-instance", "held_workflow", "--input", '"x"', "--id", "late", hub=hub_path)
        assert write.returncode == ExitCode.DISK_FULL, write.stderr
        assert "disk is full" in write.stderr
        full = _doctor_disk(hub_path)
        assert full["severity"] == "problem" and "MiB free" in full["message"], full
        assert worker.alive(), worker.log()
        pid = worker.pid

        fillers[0].unlink()  # free 1 MiB
        with TaskHubClient(str(hub_path)) as client:
            for instance_id in ids:
                final = client.wait_for_completion(instance_id, timeout=90)
                assert final.status == COMPLETED, final.failure
                assert client.decode_output(final) == f"done {instance_id}"
        assert worker.alive() and worker.pid == pid
        assert sorted(runs.read_text().split()) == sorted(ids)  # nothing ran twice
    finally:
        worker.stop()
        with contextlib.suppress(OSError):
            for path in small_disk.glob("filler-*"):
                path.unlink()
    check_invariants(hub_path)
