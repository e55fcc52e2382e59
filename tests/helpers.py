"""Helpers shared by the tests that run real worker processes: polling, processes, invariants."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dtctl.core.history import TERMINAL_STATUSES
from dtctl.hub import open_hub
from dtctl.hub.base import InstanceQuery, TaskHub
from dtctl.runtime.config import WorkerConfig

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.02, what: str = "condition"
) -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("DTCTL_FAULT", None)
    env.update(extra)
    return env


class WorkerProcess:
    """One real worker process (``python -m dtctl.runtime.worker``) with its stderr kept in a file."""

    def __init__(
        self, hub: Path | str, app: str, log_dir: Path, *, fault: str | None = None, **settings: Any
    ) -> None:
        self.config = WorkerConfig(hub=str(hub), app=app, **settings)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"worker-{time.monotonic_ns()}.log"
        env = child_env(DTCTL_LOG_LEVEL="INFO", **({"DTCTL_FAULT": fault} if fault else {}))
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dtctl.runtime.worker", self.config.to_json()],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.process.send_signal(signum)

    def kill(self) -> int:
        self.signal(signal.SIGKILL)
        return self.wait()

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.alive():
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        elif not self._log.closed:
            self._log.close()


def all_instances(hub: TaskHub) -> list[Any]:
    found: list[Any] = []
    cursor = None
    while True:
        page = hub.list_instances(InstanceQuery(limit=500, cursor=cursor, include_payloads=True))
        found.extend(page.instances)
        if not page.next_cursor:
            return found
        cursor = page.next_cursor


def all_terminal(hub_path: Path, expected: int) -> bool:
    hub = open_hub(str(hub_path))
    try:
        instances = all_instances(hub)
        return len(instances) == expected and all(i.status in TERMINAL_STATUSES for i in instances)
    finally:
        hub.close()


def check_invariants(hub_path: Path) -> None:
    """What every crash test demands once the work is done.

    Every task scheduled in history has exactly one completion or failure; no lease is held; nothing is
    left in any queue of a finished instance; the database file is intact.
    """
    hub = open_hub(str(hub_path))
    try:
        for state in all_instances(hub):
            records = hub.get_history(state.instance_id)
            scheduled = Counter(r.event.task_id for r in records if r.event.kind == "task_scheduled")
            finished = Counter(
                r.event.task_id for r in records if r.event.kind in ("task_completed", "task_failed")
            )
            assert all(n == 1 for n in scheduled.values()), (
                f"{state.instance_id}: duplicate schedule {scheduled}"
            )
            if state.status in TERMINAL_STATUSES and state.status != "TERMINATED":
                assert finished == scheduled, (
                    f"{state.instance_id}: completions {dict(finished)} != scheduled {dict(scheduled)}"
                )
            assert all(n <= 1 for n in finished.values()), (
                f"{state.instance_id}: duplicate completions {finished}"
            )
            sequences = [r.sequence for r in records]
            assert sequences == list(range(len(sequences))), f"{state.instance_id}: gaps in history"
            assert state.lease_owner is None or state.status not in TERMINAL_STATUSES
            if state.status in TERMINAL_STATUSES:
                assert hub.pending_activities(state.instance_id) == []
    finally:
        hub.close()
    with sqlite3.connect(hub_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def dtctl(
    *args: str, hub: Path | None = None, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, in a fresh process."""
    command = [sys.executable, "-m", "dtctl"]
    if hub is not None:
        command += ["--hub", str(hub)]
    return subprocess.run(
        [*command, *args],
        cwd=REPO,
        env=child_env(),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_out(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return json.loads(result.stdout)
