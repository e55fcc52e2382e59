"""``python -m benchmarks.dashboard [--n 100000] [--requests 15] [--hub PATH]``: page times of the dashboard.

Builds a SQLite hub with N instances quickly (the client's batch start, then each instance completed by
one hand-made episode checkpointed in batches, no worker and no app code; the newest 1 % stay PENDING;
N / 10 counter entities, each with one signal waiting in its inbox),
starts a real ``dtctl dashboard`` process on it, and asks every page ``--requests`` times over HTTP.
Prints one JSON object: per page the median, minimum and maximum in milliseconds. Progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from dtctl.client import StartRequest, TaskHubClient
from dtctl.core.decision import Decision
from dtctl.core.history import COMPLETED, ExecutionCompleted, OrchestratorStarted
from dtctl.hub import open_hub

REPO = Path(__file__).resolve().parents[1]
BATCH = 5000


def build(path: Path, n: int) -> None:
    hub = open_hub(str(path), create=True, synchronous="normal")
    client = TaskHubClient(hub)
    started = time.monotonic()
    for first in range(0, n, BATCH):
        client.start_instances(
            [
                StartRequest("process_order", {"n": k}, f"order-{k:07d}")
                for k in range(first, min(n, first + BATCH))
            ]
        )
    keep_pending = n // 100
    done = 0
    while done < n - keep_pending:
        items = hub.lease_orchestrations(
            "bench", None, limit=min(1000, n - keep_pending - done), lease_seconds=60
        )
        if not items:
            break
        batch = []
        for item in items:
            history = (
                OrchestratorStarted(timestamp=item.leased_at),
                *(m.event for m in item.messages),
                ExecutionCompleted(timestamp=item.leased_at, status=COMPLETED, result='"ok"'),
            )
            batch.append((item, Decision(status=COMPLETED, new_history=history, output='"ok"')))
        hub.checkpoint(batch)
        done += len(items)
    for k in range(n // 10):
        client.signal_entity(f"@counter@{k:07d}", "add", k)
    client.close()
    took = time.monotonic() - started
    print(f"built {n} instances ({done} completed) and {n // 10} entities in {took:.1f} s", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(base: str, path: str, requests: int) -> dict[str, Any]:
    times: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as http:
        http.get(path).raise_for_status()  # warm: templates compiled, a client opened
        for _ in range(requests):
            begun = time.perf_counter()
            http.get(path).raise_for_status()
            times.append((time.perf_counter() - begun) * 1000)
    return {
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard")
    parser.add_argument("--n", type=int, default=100_000, help="instances in the hub")
    parser.add_argument("--requests", type=int, default=15, help="requests per page")
    parser.add_argument("--hub", type=Path, default=None, help="reuse (or build once) this hub file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = args.hub or Path(scratch) / "hub.db"
        if not path.exists():
            build(path, args.n)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "dtctl", "--hub", str(path), "dashboard", "--port", str(port)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(base + "/workers", timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the dashboard did not start") from None
                    time.sleep(0.1)
            middle = f"order-{args.n // 2:07d}"
            pages = {
                "overview": "/",
                "instances": "/instances",
                "instances_completed": "/instances?status=COMPLETED",
                "instances_pending": "/instances?status=PENDING",
                "instances_by_name_and_prefix": f"/instances?name=process_order&prefix={middle[:-2]}",
                "instances_completed_after": "/instances?completed_after=2000-01-01T00:00",
                "instance": f"/instances/{middle}",
                "workers": "/workers",
                "entities": "/entities",
                "entities_by_prefix": f"/entities?prefix=@counter@{args.n // 20:07d}"[:-2],
                "entity": f"/entities/@counter@{args.n // 20:07d}",
            }
            figures = {name: measure(base, page, args.requests) for name, page in pages.items()}
        finally:
            server.terminate()
            server.wait(15)
    print(json.dumps({"instances": args.n, "requests_per_page": args.requests, "pages": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
