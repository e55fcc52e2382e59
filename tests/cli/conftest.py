"""Fixtures of the CLI tests: an in-process runner through the real error boundary, hubs, workers.

``run(...)`` calls :func:`dtctl.cli.main.main` with stdout/stderr captured (not a TTY, like a pipe), so
every exit code and message is the one a user would see. Tests that need a real terminal, signals or
a real worker use subprocesses (tests/helpers.py).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dtctl.cli import main
from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests.helpers import REPO, WorkerProcess, wait_until

CLI_APP = "tests/cli/cli_app.py:app"
ORDER_INPUT = {
    "order_id": "order-1",
    "customer": "ada",
    "lines": [{"sku": "book", "qty": 2}, {"sku": "pen", "qty": 10}],
}


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, f"exit {self.code}: {self.err}"
        return json.loads(self.out)


def run(*args: str, input: str = "") -> Run:
    """The CLI in this process, through the real entry point and error boundary."""
    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.StringIO(input)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main.main(list(args))
    finally:
        sys.stdin = stdin
    return Run(code, out.getvalue(), err.getvalue())


Cli = Callable[..., Run]


def make_hub(path: Path) -> Path:
    open_hub(str(path), create=True).close()
    return path


@pytest.fixture
def hub_file(tmp_path: Path) -> Path:
    return make_hub(tmp_path / "hub.db")


@pytest.fixture
def cli(hub_file: Path) -> Cli:
    def invoke(*args: str, input: str = "") -> Run:
        return run("--hub", str(hub_file), *args, input=input)

    return invoke


@pytest.fixture
def client(hub_file: Path) -> Iterator[TaskHubClient]:
    with TaskHubClient(hub_file) as c:
        yield c


class LiveWorker:
    """A real worker process on a hub, running tests/cli/cli_app.py, registered before use."""

    def __init__(self, hub_file: Path, log_dir: Path, app: str = CLI_APP) -> None:
        self.process = WorkerProcess(hub_file, app, log_dir, lease_seconds=5.0)
        with TaskHubClient(hub_file) as c:
            wait_until(lambda: c.live_workers(), timeout=30, what="the worker's first heartbeat")

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def live_worker(hub_file: Path, tmp_path: Path) -> Iterator[LiveWorker]:
    worker = LiveWorker(hub_file, tmp_path / "logs")
    try:
        yield worker
    finally:
        worker.stop()


def burst(hub_file: Path, app: str) -> None:
    """Run a worker until the visible backlog is drained (as ``dtctl worker APP --burst`` does)."""
    import subprocess

    from tests.helpers import child_env

    done = subprocess.run(
        [sys.executable, "-m", "dtctl", "--hub", str(hub_file), "worker", app, "--burst"],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="session")
def finished_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub with finished instances: the order_processing sample, and one of each final status."""
    hub_file = make_hub(tmp_path_factory.mktemp("finished") / "hub.db")
    with TaskHubClient(hub_file) as c:
        c.start_instance("process_order", input=ORDER_INPUT, instance_id="order-1")
        c.start_instance("ok", input={"n": 1}, instance_id="ok-1")
        c.start_instance("fails", input="no stock", instance_id="fails-1")
        c.start_instance("gate", instance_id="terminated-1")
    burst(hub_file, "samples/order_processing.py:app")
    burst(hub_file, CLI_APP)
    with TaskHubClient(hub_file) as c:
        c.terminate("terminated-1", "stopped by the test")
    burst(hub_file, CLI_APP)
    with TaskHubClient(hub_file) as c:
        for instance_id in ("order-1", "ok-1", "fails-1", "terminated-1"):
            c.wait_for_completion(instance_id, timeout=30)
    return hub_file


@pytest.fixture
def done_cli(finished_hub: Path) -> Cli:
    """The CLI on :func:`finished_hub` (read-only tests only: the hub is shared by the session)."""

    def invoke(*args: str, input: str = "") -> Run:
        return run("--hub", str(finished_hub), *args, input=input)

    return invoke
