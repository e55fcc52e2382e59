"""``python -m benchmarks.entities [--n N] [--runs R] [--sync full|normal]``: entity operations/s.

Two workloads, each on a fresh hub with real worker processes, medians of ``--runs``:

- ``spread``: N ``add 1`` signals to 100 counters;
- ``hot``: N ``add 1`` signals to one counter.

The workers are started and idle first; the signals are then queued in one client transaction (so
the figure is the entity queue's, not the submitting client's), and the clock runs from that commit
until every inbox is empty. Each run checks the counters add up to N exactly. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from benchmarks.harness import BenchHub, Settings, fresh_hub, machine, summarize, wait_until, workers
from dtctl.runtime.config import default_max_entities

APP = "benchmarks.entity_apps:app"
WORKLOADS = {"spread": 100, "hot": 1}  # name: number of counters


def run_once(bench: BenchHub, settings: Settings, n: int, counters: int) -> dict[str, float]:
    with workers(bench, settings, app=APP):
        hub = bench.hub
        with hub.batch():
            for i in range(n):
                hub.signal_entity(f"@tally@k{i % counters}", "add", "1")
        started = time.perf_counter()
        wait_until(
            lambda: bench.sql("SELECT NOT EXISTS (SELECT 1 FROM entity_inbox)")[0][0],
            timeout=600,
            interval=0.005,
            what="every signal to be applied",
        )
        elapsed = time.perf_counter() - started
    total = bench.sql("SELECT COALESCE(SUM(CAST(state AS INTEGER)), 0) FROM entities")[0][0]
    if total != n:
        raise AssertionError(f"the counters add up to {total}, not {n}")
    return {"seconds": elapsed, "operations_per_second": n / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.entities", description=__doc__)
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD", help="spread, hot (default: both)")
    parser.add_argument("--n", type=int, default=20_000, help="signals per run (default 20,000)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    args.workloads = args.workloads or list(WORKLOADS)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r}; choose from {', '.join(WORKLOADS)}")
    settings = Settings(runs=args.runs, workers=args.workers)
    out: dict[str, Any] = {
        "machine": machine(),
        "config": {
            "n": args.n,
            "runs": args.runs,
            "sync": args.sync,
            "workers": args.workers,
            "max_entities": default_max_entities(),
        },
    }
    for name in args.workloads:
        runs = []
        for run in range(args.runs):
            with fresh_hub(args.sync, settings) as bench:
                runs.append(run_once(bench, settings, args.n, WORKLOADS[name]))
            print(f"{name} run {run + 1}: {runs[-1]['operations_per_second']:.0f} ops/s", file=sys.stderr)
        out[name] = {"counters": WORKLOADS[name], **summarize(runs)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
