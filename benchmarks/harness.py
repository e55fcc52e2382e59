"""What every workload needs: a fresh hub file, real worker processes, clocks, statistics, the machine.

Each run gets its own temporary directory and hub (created with the run's ``synchronous`` mode) and
its own worker processes (``python -m dtctl.runtime.worker CONFIG_JSON``, as the supervisor starts
them), so runs do not share caches, WAL files or page caches of a previous run's hub.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from dtctl.hub.base import TaskHub
from dtctl.runtime.config import WorkerConfig

ROOT = Path(__file__).resolve().parents[1]
APP = "benchmarks.apps:app"
T = TypeVar("T")


# --- settings shared by a whole benchmark session --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command line chose; every workload reads its sizes from here."""

    runs: int = 3
    workers: int = 2
    max_orchestrations: int = 0  # 0: the worker's default (from the CPU count)
    max_activities: int = 0
    quick: bool = False
    n: int | None = None  # overrides the workload's main size
    keep: bool = False  # keep the temporary hubs (for looking at them afterwards)
    profile: Path | None = None  # attach py-spy to every worker; collapsed stacks land here

    def size(self, default: int, quick: int) -> int:
        if self.n is not None:
            return self.n
        return quick if self.quick else default

    def worker_config(self, hub: Path, sync: str, **extra: Any) -> WorkerConfig:
        return WorkerConfig(
            **{
                "hub": str(hub),
                "app": APP,
                "synchronous": sync,
                "max_orchestrations": self.max_orchestrations,
                "max_activities": self.max_activities,
                **extra,
            }
        )


def machine() -> dict[str, Any]:
    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu or platform.processor() or None,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


# --- statistics ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = math.ceil(round(fraction * len(ordered), 9))  # 1-based: the smallest value with this share
    return ordered[max(0, min(len(ordered), rank) - 1)]


def summarize(runs: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Per metric over the runs: the median, the spread (min, max) and every run's value."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [run[key] for run in runs if key in run]
        out[key] = {
            "median": _round(statistics.median(values)),
            "min": _round(min(values)),
            "max": _round(max(values)),
            "runs": [_round(v) for v in values],
        }
    return out


def _round(value: float) -> float:
    if value == 0 or abs(value) >= 100:
        return round(value, 1)
    return float(f"{value:.4g}")


# --- waiting -----------------------------------------------------------------------------------------


def wait_until(condition: Callable[[], T], *, timeout: float, interval: float = 0.002, what: str) -> T:
    """Poll ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# --- a hub in a temporary directory -------------------------------------------------------------------


@dataclass
class BenchHub:
    path: Path
    sync: str
    _client: TaskHubClient | None = None
    _reader: sqlite3.Connection | None = None

    @property
    def client(self) -> TaskHubClient:
        """A client (the submitting side) whose commits use the run's synchronous mode."""
        if self._client is None:
            self._client = TaskHubClient(open_hub(str(self.path), synchronous=self.sync))
        return self._client

    @property
    def hub(self) -> TaskHub:
        return self.client.hub

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read on a separate plain connection (counts and timestamps the hub API does not offer)."""
        if self._reader is None:
            self._reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        return self._reader.execute(query, params).fetchall()

    def unfinished(self) -> int:
        rows = self.sql("SELECT COUNT(*) FROM instances WHERE status IN ('PENDING', 'RUNNING', 'SUSPENDED')")
        return int(rows[0][0])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None


@contextlib.contextmanager
def fresh_hub(sync: str, settings: Settings) -> Iterator[BenchHub]:
    folder = tempfile.mkdtemp(prefix="dtctl-bench-")
    path = Path(folder) / "taskhub.db"
    open_hub(str(path), create=True, synchronous=sync).close()
    bench = BenchHub(path, sync)
    try:
        yield bench
    finally:
        bench.close()
        if not settings.keep:
            for name in os.listdir(folder):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name))
            with contextlib.suppress(OSError):
                os.rmdir(folder)


# --- worker processes -------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("DTCTL_FAULT", None)
    env["DTCTL_LOG_LEVEL"] = "INFO"  # each worker logs its episode and cache counts when it stops
    return env


_COUNTS = re.compile(
    r"ran (\d+) episodes \((\d+) from the cache, (\d+) loaded history\) and (\d+) activities"
)


@dataclass
class Workers:
    """Real worker processes on a hub; stopped (drained with SIGTERM) when the block ends."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    profilers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for profiler in self.profilers:  # py-spy writes its file once the worker it watches is gone
            try:
                profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                profiler.kill()

    def counts(self) -> dict[str, int]:
        """Episodes (warm from the cache / loaded) and activities of all workers; after ``stop``."""
        total = {"episodes": 0, "episodes_warm": 0, "episodes_loaded": 0, "activities": 0}
        for log in self.logs:
            found = _COUNTS.search(log.read_text(errors="replace")) if log.exists() else None
            if found:
                for key, value in zip(total, found.groups(), strict=True):
                    total[key] += int(value)
        return total

    def check_alive(self) -> None:
        for process in self.processes:
            code = process.poll()
            if code is not None:
                logs = "\n".join(log.read_text(errors="replace")[-2000:] for log in self.logs if log.exists())
                raise RuntimeError(f"worker {process.pid} exited with {code}:\n{logs}")


@contextlib.contextmanager
def workers(bench: BenchHub, settings: Settings, count: int | None = None, **extra: Any) -> Iterator[Workers]:
    """Start ``count`` worker processes and wait until each has registered (its first heartbeat)."""
    config = settings.worker_config(bench.path, bench.sync, **extra)
    count = settings.workers if count is None else count
    group = Workers()
    try:
        for index in range(count):
            log = bench.path.with_name(f"worker-{index}.log")
            group.logs.append(log)
            with log.open("wb") as output:
                group.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "dtctl.runtime.worker", config.to_json()],
                        cwd=ROOT,
                        env=child_env(),
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )

        def registered() -> bool:
            group.check_alive()
            return len(bench.sql("SELECT worker_id FROM workers")) >= count

        wait_until(registered, timeout=60, interval=0.01, what="the workers to start")
        if settings.profile is not None:
            group.profilers = [_profile(pid, settings.profile) for pid in group.pids]
        yield group
    finally:
        group.stop()


def _profile(pid: int, folder: Path) -> subprocess.Popen[bytes]:
    """py-spy attached to a worker (``pip install py-spy``): collapsed stacks, one file per worker."""
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / f"worker-{pid}.txt"
    command = ["py-spy", "record", "--pid", str(pid), "--rate", "500", "--format", "raw"]
    command += ["--nonblocking", "--output", str(output)]
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.2)  # let it attach before the work starts
    return profiler


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB, from /proc (Linux)."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
