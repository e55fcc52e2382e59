"""Helpers of the observability tests: real worker processes, free ports, scraping /metrics."""

from __future__ import annotations

import random
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from dtctl.client import TaskHubClient
from dtctl.core.history import TERMINAL_STATUSES
from dtctl.hub import open_hub
from tests.helpers import REPO, child_env, wait_until

APP = "tests/observe/obsapp.py"
Samples = list[tuple[str, dict[str, str], float]]


def new_hub(tmp_path: Path) -> Path:
    path = tmp_path / "hub.db"
    open_hub(str(path), create=True).close()
    return path


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    for _ in range(200):
        first = random.randint(20000, 60000 - count)
        try:
            for port in range(first, first + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise AssertionError("no free ports")


class Dtctl:
    """A long-running ``dtctl`` command (``worker``, ``metrics serve``) as a user starts it."""

    def __init__(self, hub: Path, log: Path, *args: str, **env: str) -> None:
        self._log = log.open("ab")
        self.log_path = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dtctl", "--hub", str(hub), *args],
            cwd=REPO,
            env=child_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        finally:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None


def samples(text: str) -> Samples:
    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def total(found: Samples, metric: str, /, **labels: str) -> float:
    """The sum of every sample named ``metric`` whose labels include ``labels`` (over all processes)."""
    return sum(v for n, got, v in found if n == metric and all(got.get(k) == x for k, x in labels.items()))


def scrape_all(ports: Iterable[int]) -> Samples:
    found: Samples = []
    for port in ports:
        text = wait_until(lambda p=port: scrape(p), what=f"/metrics on port {port}")
        found += samples(text)
    return found


def wait_terminal(hub: Path, ids: Iterable[str], timeout: float = 90.0) -> dict[str, str]:
    with TaskHubClient(str(hub)) as client:
        states = {i: client.wait_for_completion(i, timeout=timeout).status for i in ids}
    assert all(s in TERMINAL_STATUSES for s in states.values())
    return states


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(dtctl_[a-z_]+)\b", expr))


def dashboard(path: Path) -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded
