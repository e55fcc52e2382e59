"""The PostgreSQL hub's figures: ``python -m benchmarks.postgres`` prints one JSON object.

It starts its own throw-away server (``initdb`` + ``pg_ctl`` in a temp dir, as the tests do; durable
settings unless ``--fast``), and for each run a fresh hub schema and fresh worker processes
(``python -m dtctl.runtime.worker CONFIG_JSON``), started and idle before the clock starts:

- hello_cities: N instances of hello-cities-3 started at once through the batch start API, until all
  are COMPLETED, with W = 1, 2, 4 worker processes; instances per second.
- fan_out: one instance calling 1,000 no-op activities in parallel (when_all), start -> COMPLETED,
  seconds, with 2 worker processes.

Each figure is the median of ``--runs`` runs (3 by default); every run's value is listed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = "benchmarks.apps:app"  # the same apps as the SQLite benchmarks


# --- plumbing ----------------------------------------------------------------------------------------------


def _wait(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@contextmanager
def _workers(url_file: Path, count: int, **settings: Any) -> Iterator[list[subprocess.Popen[bytes]]]:
    from dtctl.runtime.config import WorkerConfig

    config = WorkerConfig(hub=f"@{url_file}", app=APP, **settings)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dtctl.runtime.worker", config.to_json()],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Bench:
    def __init__(self, server: Any, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self.runs = 0

    @contextmanager
    def hub(self) -> Iterator[tuple[str, Path, Any]]:
        """A fresh hub schema: (URL, file holding the URL, admin connection), dropped afterwards."""
        from dtctl.hub import open_hub

        self.runs += 1
        name = f"bench{self.runs}"
        url = self.server.url(name)
        url_file = self.workdir / f"url-{name}"
        url_file.write_text(url + "\n")
        url_file.chmod(0o600)
        open_hub(url, create=True).close()
        admin = self.server.admin()
        try:
            yield url, url_file, admin
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "dtctl_{name}" CASCADE')
            admin.close()

    @staticmethod
    def _count(admin: Any, schema: str, status: str) -> int:
        row = admin.execute(
            f"SELECT count(*) FROM {schema}.instances WHERE status = %s", (status,)
        ).fetchone()
        return int(row[0])

    @staticmethod
    def _idle(admin: Any, schema: str, count: int) -> bool:
        row = admin.execute(f"SELECT count(*) FROM {schema}.workers").fetchone()
        return int(row[0]) >= count

    def hello_cities(self, n: int, workers: int, settings: dict[str, Any]) -> float:
        from dtctl.client import TaskHubClient

        with self.hub() as (url, url_file, admin), TaskHubClient(url) as client:
            schema = client.hub.schema  # type: ignore[attr-defined]
            with _workers(url_file, workers, **settings):
                _wait(lambda: self._idle(admin, schema, workers), 60, "the workers to start", 0.05)
                started = time.perf_counter()
                client.start_instances([("hello_cities", None, f"h{k:06d}") for k in range(n)])
                _wait(lambda: self._count(admin, schema, "COMPLETED") == n, 600, f"{n} instances", 0.01)
                elapsed = time.perf_counter() - started
            return n / elapsed

    def fan_out(self, n: int, workers: int, settings: dict[str, Any]) -> float:
        from dtctl.client import TaskHubClient

        with self.hub() as (url, url_file, admin), TaskHubClient(url) as client:
            schema = client.hub.schema  # type: ignore[attr-defined]
            with _workers(url_file, workers, **settings):
                _wait(lambda: self._idle(admin, schema, workers), 60, "the workers to start", 0.05)
                started = time.perf_counter()
                client.start_instance("fan_out", input=n, instance_id="fan")
                _wait(lambda: self._count(admin, schema, "COMPLETED") == 1, 600, "the fan-out")
                return time.perf_counter() - started


def _summary(values: list[float], digits: int) -> dict[str, Any]:
    return {"median": round(statistics.median(values), digits), "runs": [round(v, digits) for v in values]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.postgres", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-n", type=int, default=1000, help="hello-cities instances per run")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts for hello-cities")
    parser.add_argument("--fan-out", type=int, default=1000, help="activities of the fan-out instance")
    parser.add_argument("--fan-out-workers", type=int, default=2)
    parser.add_argument("--fast", action="store_true", help="fsync and synchronous_commit off")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests import pgserver

    settings: dict[str, Any] = {"heartbeat_seconds": 1.0}
    server = pgserver.start_server(durable=not args.fast)
    try:
        with server.admin() as admin:
            version = admin.execute("SHOW server_version").fetchone()[0]
        bench = Bench(server, server.root)
        by_workers: dict[str, Any] = {}
        for count in [int(w) for w in args.workers.split(",") if w]:
            rates = [bench.hello_cities(args.n, count, settings) for _ in range(args.runs)]
            by_workers[str(count)] = _summary(rates, 1)
        fan = [bench.fan_out(args.fan_out, args.fan_out_workers, settings) for _ in range(args.runs)]
        result = {
            "machine": {
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "server": {"postgresql": version, "durable": not args.fast, "host": "127.0.0.1 (TCP)"},
            "hello_cities": {"instances": args.n, "unit": "instances/s", "by_workers": by_workers},
            "fan_out": {
                "activities": args.fan_out,
                "workers": args.fan_out_workers,
                "unit": "s",
                **_summary(fan, 3),
            },
        }
    finally:
        server.stop()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
