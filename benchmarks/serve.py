"""``python -m benchmarks.serve [--runs R] [--n N] [--fan-out F] [--workers W]``: SDK apps over serve.

Per run: a fresh SQLite hub (synchronous=FULL), ``dtctl serve`` and W SDK worker processes
(``benchmarks/serve_app.py``, the unmodified PyPI SDK, started W times) on it. Instances are created
in one batch through dtctl's client once every SDK worker's stream is registered; throughput is
instances over the hub's span (first created -> last completed), as in ``python -m benchmarks``.

Also reported: the bytes of past history the server sent per episode (whole histories travel on every
episode; the SDK keeps no cache), computed from the stored histories; the CPU milliseconds per instance
of serve (which includes the SQLite hub; split into its engine thread, from serve's status, and the
rest, which is gRPC) and of the SDK workers together, read from ``/proc``; and the ceiling those imply,
cores / CPU per instance, with serve as measured and with a free serve. ``--sdk-log-level`` hands the
SDK a logger of that level (its public ``logger`` option). ``--profile DIR`` records py-spy collapsed
stacks (GIL-holding samples) of serve and of the first SDK worker (``pip install py-spy``). Prints one
JSON object with medians and every run. ``python -m benchmarks.serve_ceiling`` measures the SDK worker
against the SDK's own in-memory backend.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtctl.client import StartRequest, TaskHubClient
from dtctl.core.history import TERMINAL_STATUSES, OrchestratorStarted
from dtctl.hub import open_hub
from dtctl.hub.base import InstanceQuery
from tests.serve.harness import DTCTL, Proc, Serve

REPO = Path(__file__).resolve().parents[1]
ROUND_COUNTERS = ("group_commits", "lease_rounds")  # from serve's status, per instance
CORES = os.cpu_count() or 1


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


def cpu_seconds(pid: int, thread: str | None = None) -> float:
    """User + system CPU seconds a live process (or one of its threads) has used (Linux ``/proc``)."""
    path = Path(f"/proc/{pid}/stat") if thread is None else Path(f"/proc/{pid}/task/{thread}/stat")
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread group of a live process (thread names without their numbers)."""
    found: dict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip().rstrip("0123456789_-")
            found[name or "?"] += cpu_seconds(pid, task.name)
        except OSError:
            continue  # the thread ended meanwhile
    return found


def _counters(port: int) -> dict[str, float]:
    from dtctl.serve.health import read_status

    status = read_status(f"127.0.0.1:{port}", token=None, tls_root=None, timeout=10)
    counters: dict[str, float] = status["counters"]
    return counters


def _profile(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    import shutil

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--gil", "--rate", "1000"]
    argv += ["--format", "raw", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL)


@dataclass(frozen=True)
class Setup:
    workers: int = 1
    profile: Path | None = None
    serve_args: tuple[str, ...] = ()
    sdk_log_level: str | None = None


def one_run(name: str, n: int, arg: Any, tmp: Path, setup: Setup) -> dict[str, float]:
    hub_path = str(tmp / f"{name}-{time.monotonic_ns()}.db")
    subprocess.run([*DTCTL, "--hub", hub_path, "init"], check=True, capture_output=True)
    serve = Serve(hub_path, tmp / "logs", args=setup.serve_args)
    app = [sys.executable, "-m", "benchmarks.serve_app", str(serve.port)]
    if setup.sdk_log_level:
        app.append(setup.sdk_log_level)
    workers = [Proc(app, tmp / "logs" / f"sdk-{i}.log") for i in range(setup.workers)]
    hub = open_hub(hub_path)
    client = TaskHubClient(hub)
    try:
        deadline = time.monotonic() + 60
        while sum("hello_cities" in w.orchestrations for w in hub.list_workers()) < setup.workers:
            if time.monotonic() > deadline:
                raise RuntimeError("the SDK workers did not connect:\n" + workers[0].log())
            time.sleep(0.05)
        pids = [serve.process.pid, *(w.process.pid for w in workers)]
        counters_before = _counters(serve.port)
        cpu_before = [cpu_seconds(pid) for pid in pids]
        threads_before = thread_cpu(serve.process.pid)
        profilers = []
        if setup.profile is not None:
            stamp = time.monotonic_ns()
            profilers = [
                _profile(pids[0], setup.profile / f"serve-{name}-{stamp}.txt", 8),
                _profile(pids[1], setup.profile / f"sdk-{name}-{stamp}.txt", 8),
            ]
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
        cpu = [after - before for after, before in zip(map(cpu_seconds, pids), cpu_before, strict=True)]
        threads = {k: v - threads_before.get(k, 0.0) for k, v in thread_cpu(serve.process.pid).items()}
        counters = _counters(serve.port)
        for profiler in profilers:
            profiler.wait(60)
        assert all(r.status == "COMPLETED" for r in rows), {r.status for r in rows}
        span = (max(r.completed_at or 0 for r in rows) - min(r.created_at for r in rows)) / 1e6
        sample = rows[: min(50, len(rows))]
        measured = [_history_bytes(hub, r.instance_id) for r in sample]
        episodes = sum(m[0] for m in measured)
        sent = sum(m[1] for m in measured)
        serve_ms, sdk_ms = cpu[0] * 1000 / n, sum(cpu[1:]) * 1000 / n
        engine_ms = (counters["engine_cpu_ms"] - counters_before["engine_cpu_ms"]) / n
        return {
            "instances_per_s": n / span,
            "span_s": span,
            "wall_s": wall,
            "episodes_per_instance": episodes / len(sample),
            "past_bytes_per_episode": sent / max(1, episodes),
            "past_bytes_per_instance": sent / len(sample),
            "serve_cpu_ms_per_instance": serve_ms,
            "serve_engine_cpu_ms_per_instance": engine_ms,  # the hub thread: commits, leases, conversions
            "serve_rest_cpu_ms_per_instance": serve_ms - engine_ms,  # gRPC's threads (Python and C core)
            "sdk_cpu_ms_per_instance": sdk_ms,
            # What the machine could do if CPU were all that limited: its cores over the pair's CPU.
            "ceiling_per_s": CORES * 1000 / (serve_ms + sdk_ms),
            "ceiling_free_serve_per_s": CORES * 1000 / sdk_ms,
            **{f"serve_cpu_ms_per_instance[{k}]": v * 1000 / n for k, v in threads.items() if v > 0},
            **{f"{k}_per_instance": (counters[k] - counters_before[k]) / n for k in ROUND_COUNTERS},
        }
    finally:
        hub.close()
        for worker in workers:
            worker.process.send_signal(signal.SIGKILL)
            worker.stop()
        serve.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=1000, help="hello_cities instances per run")
    parser.add_argument("--fan-out", type=int, default=1000, help="activities of the fan-out instance")
    parser.add_argument("--workers", type=int, default=1, help="SDK worker processes")
    parser.add_argument("--profile", type=Path, default=None, help="write py-spy flame graphs here")
    parser.add_argument(
        "--sdk-log-level", default=None, help="hand the SDK worker a logger of this level (default: its own)"
    )
    parser.add_argument("--only", choices=("hello_cities", "fan_out"), default=None)
    args = parser.parse_args()
    setup = Setup(workers=args.workers, profile=args.profile, sdk_log_level=args.sdk_log_level)
    if setup.profile is not None:
        setup.profile.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {
        "cores": CORES,
        "sdk_workers": args.workers,
        "sdk_log_level": args.sdk_log_level,
        "load_average": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, n, arg in (
            ("hello_cities", "hello_cities", args.n, None),
            ("fan_out", "fan_out", 1, args.fan_out),
        ):
            if args.only not in (None, label):
                continue
            runs = []
            for i in range(args.runs):
                runs.append(one_run(name, n, arg, Path(tmp), setup))
                print(f"{label} run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
            out[label] = {
                "median": {k: round(statistics.median(r.get(k, 0.0) for r in runs), 3) for k in runs[0]},
                "runs": runs,
            }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
