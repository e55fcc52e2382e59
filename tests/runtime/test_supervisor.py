"""The supervisor: config off the command line, crashed workers restarted, fatal exits not retried."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED, FAILED
from dtctl.hub import open_hub
from dtctl.runtime.config import WorkerConfig
from dtctl.runtime.supervisor import Supervisor
from tests.helpers import wait_until


def _argv(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_workers_get_their_config_on_stdin_not_argv_and_are_restarted(tmp_path: Path) -> None:
    hub = tmp_path / "secret-hub.db"
    open_hub(str(hub), create=True).close()
    supervisor = Supervisor(WorkerConfig(hub=str(hub), app="dtctl.demo:app"), 1, notify=lambda _m: None)
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        first = wait_until(lambda: supervisor.pids(), what="a worker process")[0]
        assert "secret-hub" not in _argv(first)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: supervisor.pids() and supervisor.pids()[0] != first, what="the worker's restart")
    finally:
        supervisor.request_stop()
        runner.join(timeout=30)
    assert not runner.is_alive()


def test_a_worker_that_cannot_load_its_app_stops_the_supervisor(tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    supervisor = Supervisor(WorkerConfig(hub=str(hub), app="no_such_module:app"), 2, notify=lambda _m: None)
    assert supervisor.run() == 2  # usage: restarting would fail forever


def _next_worker(supervisor: Supervisor, previous: int | None) -> int:
    def started() -> int | None:
        pids = supervisor.pids()
        return pids[0] if pids and pids[0] != previous else None

    pid: int = wait_until(started, what="a worker process")
    return pid


def test_the_restart_delay_starts_again_after_a_healthy_run(tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    messages: list[str] = []
    healthy_after = 2.0
    supervisor = Supervisor(
        WorkerConfig(hub=str(hub), app="dtctl.demo:app"),
        1,
        notify=messages.append,
        healthy_after=healthy_after,
    )
    runner = threading.Thread(target=supervisor.run)
    runner.start()

    def kill_next(previous: int | None) -> int:
        pid: int = wait_until(
            lambda: supervisor.pids() and supervisor.pids()[0] != previous and supervisor.pids()[0],
            what="a worker",
        )
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: any("exited with -9" in m for m in messages[-1:]), what="the restart notice")
        return pid

    try:
        first = kill_next(None)
        second = kill_next(first)
        delays = [m.rsplit(" ", 1)[1] for m in messages if "restarting in" in m]
        assert delays == ["0.5s", "1.0s"]  # short-lived runs: the delay doubles
        third: int = wait_until(
            lambda: supervisor.pids() and supervisor.pids()[0] != second and supervisor.pids()[0],
            what="a worker",
        )
        born = time.monotonic()
        wait_until(lambda: time.monotonic() - born > healthy_after, what="a healthy run")  # the run itself
        os.kill(third, signal.SIGKILL)
        wait_until(lambda: len([m for m in messages if "restarting in" in m]) == 3, what="the third restart")
        delays = [m.rsplit(" ", 1)[1] for m in messages if "restarting in" in m]
        assert delays == ["0.5s", "1.0s", "0.5s"]
    finally:
        supervisor.request_stop()
        runner.join(timeout=30)
    assert not runner.is_alive()


def test_a_worker_stuck_with_the_gil_held_is_killed_and_its_episode_failed_alone(tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    with TaskHubClient(str(hub)) as client:
        client.start_instance("hog", instance_id="hog")
        client.start_instance("slow_chain", input=0, instance_id="innocent")
    messages: list[str] = []
    config = WorkerConfig(hub=str(hub), app="tests/apps/faults.py:app", lease_seconds=2, stall_timeout=2)
    supervisor = Supervisor(config, 1, notify=messages.append)
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        with TaskHubClient(str(hub)) as client:
            hog = client.wait_for_completion("hog", timeout=90)
            innocent = client.wait_for_completion("innocent", timeout=60)
    finally:
        supervisor.request_stop()
        runner.join(timeout=30)
    assert any("made no progress" in m for m in messages), messages
    assert innocent.status == COMPLETED
    assert hog.status == FAILED and hog.failure is not None
    assert "orchestrator 'hog'" in hog.failure.message and "stall timeout (2s)" in hog.failure.message
