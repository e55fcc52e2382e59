"""Real processes for the serve tests: ``dtctl serve`` on a hub, and SDK worker processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import REPO, child_env, wait_until

DTCTL = [sys.executable, "-m", "dtctl"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Proc:
    """A child process with its output kept in a file."""

    def __init__(self, argv: list[str], log_path: Path, **env: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=child_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(20)

    def stop(self, timeout: float = 30.0) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return int(self.process.returncode)


class Serve(Proc):
    """``dtctl --hub HUB serve --port PORT`` as a subprocess, ready once its port accepts."""

    def __init__(
        self, hub: str, log_dir: Path, *, port: int | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.hub = hub
        self.port = port or free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        argv = [*DTCTL, "--hub", hub, "serve", "--port", str(self.port), *args]
        super().__init__(argv, log_dir / f"serve-{self.port}-{time.monotonic_ns()}.log", DTCTL_LOG="INFO")
        wait_until(lambda: port_open(self.port) or not self.alive(), timeout=30, what="dtctl serve to listen")
        assert self.alive(), self.log()

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"


class SdkWorker(Proc):
    """``python -m tests.serve.sdkapp PORT``: the unmodified durabletask SDK worker, connected to serve."""

    def __init__(self, port: int, log_dir: Path, **env: Any) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "tests.serve.sdkapp", str(port)]
        super().__init__(
            argv, log_dir / f"sdk-worker-{time.monotonic_ns()}.log", **{k: str(v) for k, v in env.items()}
        )
