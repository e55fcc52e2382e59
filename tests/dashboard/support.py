"""A real ``dtctl dashboard`` process for the tests, and requests to it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import REPO, child_env, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DashboardProcess:
    """``dtctl --hub HUB dashboard --port P [flags]`` in a process of its own."""

    def __init__(
        self, hub: str, log_dir: Path, *flags: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"dashboard-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dtctl", "--hub", hub, "dashboard", "--port", str(self.port), *flags],
            cwd=REPO,
            env=child_env(**(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, timeout=30, interval=0.05, what=f"the dashboard on {self.base}")

    def _answers(self) -> bool:
        assert self.process.poll() is None, f"the dashboard exited: {self.log()}"
        try:
            return httpx.get(self.base + "/workers", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.base + path, timeout=10, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return int(self.process.returncode)


def token_of(html: str) -> str:
    marker = '<meta name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def orders(count: int, *, bad_every: int = 0) -> list[tuple[str, dict[str, Any], str]]:
    """Order-processing inputs: (name, input, id); every ``bad_every``-th has an unknown SKU."""
    found = []
    for n in range(count):
        sku = "nope" if bad_every and n % bad_every == bad_every - 1 else "pen"
        order = {
            "order_id": f"order-{n}",
            "customer": "ada",
            "lines": [{"sku": "book", "qty": 1}, {"sku": sku, "qty": 2}],
        }
        found.append(("process_order", order, f"order-{n}"))
    return found


def dump(value: Any) -> str:
    return json.dumps(value)
