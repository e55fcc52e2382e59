"""``python -m benchmarks.serve [--runs R] [--n N] [--fan-out F]``: durabletask SDK apps over ``dtctl serve``.

Per run: a fresh SQLite hub (synchronous=FULL), ``dtctl serve`` and one SDK worker process
(``benchmarks/serve_app.py``, the unmodified PyPI SDK) on it. Instances are created in one batch through
dtctl's client once the SDK worker's stream is registered; throughput is instances over the hub's span
(first created -> last completed), as in ``python -m benchmarks``. Also reported: the bytes of past
history the server sent per episode (whole histories travel on every episode; the SDK keeps no cache),
computed from the stored histories. Prints one JSON object with medians and every run.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dtctl.client import StartRequest, TaskHubClient
from dtctl.core.history import TERMINAL_STATUSES, OrchestratorStarted
from dtctl.hub import open_hub
from dtctl.hub.base import InstanceQuery
from tests.serve.harness import DTCTL, Proc, Serve

REPO = Path(__file__).resolve().parents[1]


def _instances(hub: Any) -> list[Any]:
    found, cursor = [], None
    while True:
        page = hub.list_instances(InstanceQuery(limit=1000, cursor=cursor))
        found.extend(page.instances)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def _history_bytes(hub: Any, instance_id: str) -> tuple[int, int]:
    """(episodes, bytes of past events sent over all episodes) for one instance."""
    from dtctl.serve import convert  # the proto stubs: only in this process, never beside the SDK's

    sizes = [convert.event_to_proto(r.event).ByteSize() for r in hub.get_history(instance_id)]
    events = [r.event for r in hub.get_history(instance_id)]
    total, episodes, past = 0, 0, 0
    for event, size in zip(events, sizes, strict=True):
        if isinstance(event, OrchestratorStarted):
            episodes += 1
            total += past
        past += size
    return episodes, total


def one_run(name: str, n: int, arg: Any, tmp: Path) -> dict[str, float]:
    hub_path = str(tmp / f"{name}-{time.monotonic_ns()}.db")
    subprocess.run([*DTCTL, "--hub", hub_path, "init"], check=True, capture_output=True)
    serve = Serve(hub_path, tmp / "logs")
    worker = Proc([sys.executable, "-m", "benchmarks.serve_app", str(serve.port)], tmp / "logs" / "sdk.log")
    hub = open_hub(hub_path)
    client = TaskHubClient(hub)
    try:
        deadline = time.monotonic() + 60
        while not any("hello_cities" in w.orchestrations for w in hub.list_workers()):
            if time.monotonic() > deadline:
                raise RuntimeError("the SDK worker did not connect:\n" + worker.log())
            time.sleep(0.05)
        started = time.perf_counter()
        client.start_instances([StartRequest(name, arg) for _ in range(n)])
        while True:
            rows = _instances(hub)
            if all(r.status in TERMINAL_STATUSES for r in rows):
                break
            if time.perf_counter() - started > 600:
                raise RuntimeError("timed out")
            time.sleep(0.05)
        wall = time.perf_counter() - started
        assert all(r.status == "COMPLETED" for r in rows), {r.status for r in rows}
        span = (max(r.completed_at or 0 for r in rows) - min(r.created_at for r in rows)) / 1e6
        sample = rows[: min(50, len(rows))]
        measured = [_history_bytes(hub, r.instance_id) for r in sample]
        episodes = sum(m[0] for m in measured)
        sent = sum(m[1] for m in measured)
        return {
            "instances_per_s": n / span,
            "span_s": span,
            "wall_s": wall,
            "episodes_per_instance": episodes / len(sample),
            "past_bytes_per_episode": sent / max(1, episodes),
            "past_bytes_per_instance": sent / len(sample),
        }
    finally:
        hub.close()
        worker.process.send_signal(signal.SIGKILL)
        worker.stop()
        serve.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=1000, help="hello_cities instances per run")
    parser.add_argument("--fan-out", type=int, default=1000, help="activities of the fan-out instance")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, n, arg in (
            ("hello_cities", "hello_cities", args.n, None),
            ("fan_out", "fan_out", 1, args.fan_out),
        ):
            runs = []
            for i in range(args.runs):
                runs.append(one_run(name, n, arg, Path(tmp)))
                print(f"{label} run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
            out[label] = {
                "median": {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]},
                "runs": runs,
            }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
