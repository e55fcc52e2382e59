"""``dtctl top`` on a terminal: a full-screen view that redraws, and Ctrl-C quits with status 0."""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests.helpers import REPO, child_env

pty = pytest.importorskip("pty")


def test_top_redraws_on_a_terminal_and_quits_on_ctrl_c(tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    pid, fd = pty.fork()
    if pid == 0:  # the child: dtctl top on the pseudo-terminal
        os.chdir(REPO)
        env = child_env(COLUMNS="120", LINES="40")
        os.execve(sys.executable, [sys.executable, "-m", "dtctl", "--hub", str(hub), "top"], env)
    output = b""
    started = False

    def read(until: float, wanted: bytes) -> None:
        nonlocal output
        while time.monotonic() < until and wanted not in output:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:
                    return

    try:
        read(time.monotonic() + 20, b"scale recommendation")
        assert b"\x1b[?1049h" in output  # the alternate (full) screen
        with TaskHubClient(str(hub)) as client:  # a hub change redraws the screen
            client.start_instance("nobody_runs_this", instance_id="x")
        read(time.monotonic() + 20, b"nobody_runs_this")
        assert b"nobody_runs_this" in output
        started = True
    finally:
        os.kill(pid, signal.SIGINT)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert started and os.waitstatus_to_exitcode(status) == 0
