"""The supervisor: config off the command line, crashed workers restarted, fatal exits not retried."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

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
