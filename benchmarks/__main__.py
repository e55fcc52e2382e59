"""``python -m benchmarks [WORKLOAD ...] [--n N] [--runs R] [--sync full|normal|both] [--quick]``.

Runs the workloads of DESIGN §10 (all of them by default) with real worker processes on a fresh hub
file per run, with ``synchronous=FULL`` and ``NORMAL``, and prints one JSON object: per workload and
mode the median, minimum, maximum and every run of each figure, the configuration, and the machine.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Settings, fresh_hub, machine, summarize
from benchmarks.workloads import WORKLOADS, Figures, Workload
from dtctl import __version__
from dtctl.runtime.config import default_max_activities, default_max_orchestrations

SYNC_MODES = ("full", "normal")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="dtctl benchmarks; prints one JSON object on stdout.",
    )
    parser.add_argument(
        "workloads", nargs="*", metavar="WORKLOAD", help=f"any of: {', '.join(WORKLOADS)} (default: all)"
    )
    parser.add_argument(
        "--n", type=int, default=None, help="the workload's main size (instances, activities)"
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per workload and mode (default 3)")
    parser.add_argument("--sync", choices=(*SYNC_MODES, "both"), default="both", help="synchronous mode")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--max-orchestrations", type=int, default=0, help="per worker (default: from CPUs)")
    parser.add_argument("--max-activities", type=int, default=0, help="per worker (default: from CPUs)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run: checks the code runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary hub files")
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy every worker; stacks go to DIR"
    )
    args = parser.parse_args(argv)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r}; choose from {', '.join(WORKLOADS)}")
    return args


def run_workload(workload: Workload, modes: tuple[str, ...], settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": workload.summary, "params": workload.params(settings)}
    if not workload.uses_hub_writes:
        modes = modes[:1]
        out["note"] = "reads only: the synchronous mode does not change these figures"
    for sync in modes:
        runs: list[Figures] = []
        for index in range(settings.runs):
            started = time.perf_counter()
            load = os.getloadavg()[0]  # a shared machine: how busy it was when the run started
            with fresh_hub(sync, settings) as bench:
                figures = workload.run(bench, settings)
            figures["machine_load_1m"] = load
            runs.append(figures)
            took = time.perf_counter() - started
            print(
                f"{workload.name} sync={sync} run {index + 1}/{settings.runs} ({took:.1f} s): "
                + json.dumps({k: round(v, 3) for k, v in figures.items()}),
                file=sys.stderr,
                flush=True,
            )
        out[sync] = summarize(runs)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    settings = Settings(
        runs=args.runs or (1 if args.quick else 3),
        workers=args.workers,
        max_orchestrations=args.max_orchestrations,
        max_activities=args.max_activities,
        quick=args.quick,
        n=args.n,
        keep=args.keep,
        profile=args.profile,
    )
    modes = SYNC_MODES if args.sync == "both" else (args.sync,)
    names = args.workloads or list(WORKLOADS)
    started = time.perf_counter()
    results = {name: run_workload(WORKLOADS[name], modes, settings) for name in names}
    report = {
        "benchmark": "dtctl",
        "dtctl": __version__,
        "command": shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "config": {
            "synchronous": list(modes),
            "runs": settings.runs,
            "worker_processes": settings.workers,
            "max_orchestrations": settings.max_orchestrations or default_max_orchestrations(),
            "max_activities": settings.max_activities or default_max_activities(),
            "quick": settings.quick,
        },
        "seconds": round(time.perf_counter() - started, 1),
        "workloads": results,
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
