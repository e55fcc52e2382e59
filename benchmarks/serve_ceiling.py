"""``python -m benchmarks.serve_ceiling [--n N] [--runs R]``: what the SDK worker itself costs per instance.

The same SDK app as ``benchmarks.serve`` (``benchmarks/serve_app.py``) runs against the SDK's own
in-memory backend (``durabletask.testing.in_memory_backend``: no storage, no durability, no leases),
the cheapest backend there is. The SDK worker's CPU seconds per instance measured here is a floor no
backend can go under, and bounds what one 2-core machine can do whatever ``dtctl serve`` costs:
``2 cores / (SDK CPU per instance)`` even with a free backend. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.serve import cpu_seconds

BACKEND = """
import sys, time
from durabletask.testing.in_memory_backend import create_test_backend
create_test_backend(port=int(sys.argv[1])).start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_run(n: int, log_level: str | None, logs: Path) -> dict[str, float]:
    from durabletask import client as sdk_client

    port = _free_port()
    backend = subprocess.Popen(
        [sys.executable, "-c", BACKEND, str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert backend.stdout is not None
    backend.stdout.readline()
    app = [sys.executable, "-m", "benchmarks.serve_app", str(port), *([log_level] if log_level else [])]
    with open(logs / f"sdk-{port}.log", "wb") as log:
        worker = subprocess.Popen(app, stdout=log, stderr=log)
    try:
        client = sdk_client.TaskHubGrpcClient(host_address=f"localhost:{port}")
        probe = client.schedule_new_orchestration("hello_cities")  # the worker is connected once it ran
        client.wait_for_orchestration_completion(probe, timeout=60)
        before = [cpu_seconds(backend.pid), cpu_seconds(worker.pid)]
        started = time.perf_counter()
        ids = [client.schedule_new_orchestration("hello_cities") for _ in range(n)]
        for instance_id in ids:
            state = client.wait_for_orchestration_completion(instance_id, timeout=600)
            assert state is not None and state.runtime_status.name == "COMPLETED", state
        wall = time.perf_counter() - started
        after = [cpu_seconds(backend.pid), cpu_seconds(worker.pid)]
        backend_cpu, sdk_cpu = (a - b for a, b in zip(after, before, strict=True))
        return {
            "instances_per_s": n / wall,
            "sdk_cpu_ms_per_instance": sdk_cpu * 1000 / n,
            "backend_cpu_ms_per_instance": backend_cpu * 1000 / n,
            "ceiling_2_cores_per_s": 2000 / (sdk_cpu * 1000 / n),
        }
    finally:
        for proc in (worker, backend):
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--sdk-log-level", default=None)
    args = parser.parse_args()
    runs: list[dict[str, float]] = []
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            runs.append(one_run(args.n, args.sdk_log_level, Path(tmp)))
            print(f"run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
    out: dict[str, Any] = {
        "backend": "durabletask.testing.in_memory_backend",
        "sdk_log_level": args.sdk_log_level,
        "load_average": load,
        "median": {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]},
        "runs": runs,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
