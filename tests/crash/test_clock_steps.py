"""Wall-clock steps under a SQLite hub: leases and heartbeats must not follow them.

Every dtctl process of the test (workers, CLI) runs under an LD_PRELOAD shim, compiled here, that adds
an offset to CLOCK_REALTIME; the test steps that offset while the processes run (the shim reads it
from a shared memory-mapped file). The test process itself keeps the true time.

- forward by an hour while 20 activities are in flight: none of them runs again;
- back by an hour, then the worker holding the work is killed: another worker takes it over within
  the lease, and ``doctor`` warns about times dated in the future.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, check_invariants, dtctl, wait_until

APP = "tests/apps/held.py:app"
HOUR_NS = 3600 * 1_000_000_000
LEASE = 2.0
SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile long long *offset_ns;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

__attribute__((constructor)) static void shim_init(void) {
    real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("DTCTL_TEST_CLOCK_FILE");
    if (!path) return;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    void *p = mmap(NULL, sizeof(long long), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) offset_ns = p;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int r = real_clock_gettime(id, ts);
    if (r == 0 && offset_ns && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        long long t = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + *offset_ns;
        ts->tv_sec = t / 1000000000LL;
        ts->tv_nsec = t % 1000000000LL;
    }
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;
    clock_gettime(CLOCK_REALTIME, &ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
"""


class WallClock:
    """The shifted wall clock of the dtctl processes the test starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_bytes(struct.pack("<q", 0))

    def step(self, offset_ns: int) -> None:
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, struct.pack("<q", offset_ns), 0)
        finally:
            os.close(fd)


@pytest.fixture
def shifted_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WallClock:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the clock shim")
    source = tmp_path / "clockshim.c"
    source.write_text(SHIM)
    library = tmp_path / "clockshim.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"], check=True)
    clock = WallClock(tmp_path / "clock-offset")
    monkeypatch.setenv("LD_PRELOAD", str(library))
    monkeypatch.setenv("DTCTL_TEST_CLOCK_FILE", str(clock.path))
    probe = subprocess.run(
        ["python3", "-c", "import time; print(time.time())"], capture_output=True, text=True, check=True
    )
    assert abs(float(probe.stdout) - time.time()) < 5, "the shim changed an unshifted clock"
    clock.step(HOUR_NS)
    shifted = subprocess.run(
        ["python3", "-c", "import time; print(time.time())"], capture_output=True, text=True, check=True
    )
    clock.step(0)
    if abs(float(shifted.stdout) - time.time() - 3600) > 5:
        pytest.skip("the LD_PRELOAD clock shim does not reach Python's time.time() here")
    return clock


def _start(hub_path: Path, gate: Path, count: int) -> list[str]:
    open_hub(str(hub_path), create=True).close()
    ids = [f"held-{i}" for i in range(count)]
    with TaskHubClient(str(hub_path)) as client:
        for instance_id in ids:
            client.start_instance("held_workflow", input=str(gate), instance_id=instance_id)
    return ids


def _runs(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _state_of(hub_path: Path, pid: int) -> str | None:
    shown = json.loads(dtctl("workers", "--lost-after", "1", "--json", hub=hub_path).stdout)["workers"]
    return next((w["state"] for w in shown if w["pid"] == pid), None)


def _holds_for(condition_ok: Callable[[], bool], seconds: float) -> None:
    """``condition_ok`` stays true for ``seconds`` (a bounded observation, polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition_ok()
        time.sleep(0.05)


def test_forward_step_reruns_nothing(
    tmp_path: Path, shifted_clock: WallClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_path, gate, runs = tmp_path / "hub.db", tmp_path / "gate", tmp_path / "runs"
    ids = _start(hub_path, gate, 20)
    monkeypatch.setenv("DTCTL_TEST_RUNS", str(runs))
    settings: dict[str, Any] = {"lease_seconds": LEASE, "heartbeat_seconds": 0.5, "max_activities": 20}
    workers = [WorkerProcess(hub_path, APP, tmp_path / "logs", **settings) for _ in range(2)]
    try:
        wait_until(lambda: len(_runs(runs)) >= 20, what="20 activities in flight")
        shifted_clock.step(HOUR_NS)
        # Long enough for every lease to have run out had it followed the wall clock, several times.
        _holds_for(lambda: len(_runs(runs)) == 20, 3 * LEASE)
        gate.touch()
        with TaskHubClient(str(hub_path)) as client:
            for instance_id in ids:
                assert client.wait_for_completion(instance_id, timeout=60).status == COMPLETED
        assert sorted(_runs(runs)) == sorted(ids)
        assert all(w.alive() for w in workers)
    finally:
        for worker in workers:
            worker.stop()
    check_invariants(hub_path)


def test_backward_step_then_crash_leaves_nothing_stuck(
    tmp_path: Path, shifted_clock: WallClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_path, gate, runs = tmp_path / "hub.db", tmp_path / "gate", tmp_path / "runs"
    ids = _start(hub_path, gate, 10)
    monkeypatch.setenv("DTCTL_TEST_RUNS", str(runs))
    settings: dict[str, Any] = {"lease_seconds": LEASE, "heartbeat_seconds": 0.5}
    crashed = WorkerProcess(hub_path, APP, tmp_path / "logs", **settings)
    wait_until(lambda: len(_runs(runs)) >= 10, what="10 activities in flight")
    crashed.signal(signal.SIGSTOP)  # it renews nothing after the step
    shifted_clock.step(-HOUR_NS)
    crashed.kill()

    report = json.loads(dtctl("doctor", "--json", hub=hub_path).stdout)
    found = {f["check"]: f for f in report["findings"]}
    assert found["clock"]["severity"] == "warning" and "in the future" in found["clock"]["message"]
    assert found["clock-step"]["severity"] == "warning" and "back" in found["clock-step"]["message"]

    gate.touch()
    rescuer = WorkerProcess(hub_path, APP, tmp_path / "logs", **settings)
    try:
        started = time.monotonic()
        with TaskHubClient(str(hub_path)) as client:
            for instance_id in ids:
                assert client.wait_for_completion(instance_id, timeout=60).status == COMPLETED
        assert time.monotonic() - started < 45  # the lease, the suspects' isolated runs: not an hour
        wait_until(lambda: _state_of(hub_path, crashed.pid) == "lost", what="the killed worker shown lost")
    finally:
        rescuer.stop()
    check_invariants(hub_path)


def test_backward_step_strands_no_entity(
    tmp_path: Path, shifted_clock: WallClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entities follow the same clocks: a batch leased before a backward step is taken over within the
    lease, and signals sent before the step stay visible (neither waits for the wall clock to catch
    up by an hour)."""
    hub_path = tmp_path / "hub.db"
    open_hub(str(hub_path), create=True).close()
    settings: dict[str, Any] = {"lease_seconds": LEASE, "heartbeat_seconds": 0.5}
    with TaskHubClient(str(hub_path)) as client:
        for _ in range(5):
            client.signal_entity("@counter@c", "add", 1)
    crashed = WorkerProcess(
        hub_path, "tests/apps/entities.py:app", tmp_path / "logs", fault="entity.leased", **settings
    )
    assert crashed.wait() == -signal.SIGKILL, crashed.log()  # died holding the entity's lease
    shifted_clock.step(-HOUR_NS)
    dtctl("entity", "signal", "@counter@c", "add", "--data", "1", hub=hub_path)

    rescuer = WorkerProcess(hub_path, "tests/apps/entities.py:app", tmp_path / "logs", **settings)
    try:
        with TaskHubClient(str(hub_path)) as client:
            started = time.monotonic()

            def counted() -> bool:
                entity = client.get_entity("@counter@c")
                return entity is not None and entity.state == "6"

            wait_until(counted, timeout=45, what="all six signals applied after the step")
            assert time.monotonic() - started < 45
            entity = client.get_entity("@counter@c")
            assert entity is not None and entity.lease_owner is None
    finally:
        rescuer.stop()
    check_invariants(hub_path)
