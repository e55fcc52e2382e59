"""``python -m benchmarks.observe [--n 1000] [--rounds 5] [--sync full]``: what observability costs.

hello-cities (the §10 workload: N instances of three activities each, started at once, two worker
processes) with observability off, with Prometheus metrics on (``metrics_port``: every process serves
/metrics; one scrape per run at the end checks the counts), with tracing on (``tracing``: every span
built and handed to a BatchSpanProcessor whose exporter drops it: dtctl's instrumentation and the SDK),
and with tracing whose spans are also encoded to OTLP protobuf (``tracing_otlp``: what the OTLP exporter
does before its network call), and the latter with 10 % of instances sampled (``tracing_otlp_10pct``).
The modes alternate within each round (in a rotated order) on fresh
hubs, so a busy machine slows each alike; the figures are medians over the rounds, as instances per
second (the hub's clock) and worker CPU per instance (less noisy on a shared machine). Prints one JSON
object; progress on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from benchmarks.harness import (
    ROOT,
    BenchHub,
    Settings,
    Workers,
    child_env,
    cpu_seconds,
    fresh_hub,
    machine,
    wait_until,
)
from benchmarks.workloads import _span_s, _wait_done
from dtctl.client import StartRequest

MODES = ("off", "metrics", "tracing", "tracing_otlp", "tracing_otlp_10pct")


class _DropExporter:
    """Drops each batch; with ``encode``, first encodes it as the OTLP exporter would send it."""

    def __init__(self, encode: bool) -> None:
        self._encode = encode

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self._encode:
            from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

            encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def drop_processor() -> Any:
    """``DTCTL_OTEL_SPAN_EXPORTER=benchmarks.observe:drop_processor``: spans built and batched."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(_DropExporter(encode=False))  # type: ignore[arg-type]


def encode_processor() -> Any:
    """``…:encode_processor``: spans built, batched and encoded to OTLP protobuf (the network aside)."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(_DropExporter(encode=True))  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _workers(bench: BenchHub, settings: Settings, mode: str) -> Iterator[tuple[list[int], list[int]]]:
    """The harness's worker processes, each with its own metrics port in ``metrics`` mode."""
    env = child_env()
    if mode.startswith("tracing"):
        factory = "encode_processor" if mode.startswith("tracing_otlp") else "drop_processor"
        env["DTCTL_OTEL_SPAN_EXPORTER"] = f"benchmarks.observe:{factory}"
    if mode.endswith("_10pct"):  # sampled by trace id: an instance's spans are all kept or all dropped
        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = "0.1"
    group, ports = Workers(), []
    try:
        for index in range(settings.workers):
            port = _free_port() if mode == "metrics" else 0
            ports.append(port)
            config = settings.worker_config(bench.path, bench.sync, metrics_port=port)
            log = bench.path.with_name(f"worker-{index}.log")
            group.logs.append(log)
            with log.open("wb") as output:
                command = [sys.executable, "-m", "dtctl.runtime.worker", config.to_json()]
                group.processes.append(
                    subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
                )

        def registered() -> bool:
            group.check_alive()
            return len(bench.sql("SELECT worker_id FROM workers")) >= settings.workers

        wait_until(registered, timeout=60, interval=0.01, what="the workers to start")
        yield ports, group.pids
    finally:
        group.stop()


def _activities_counted(ports: list[int]) -> float:
    counted = 0.0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith('dtctl_work_items_completed_total{kind="activity"'):
                    counted += float(line.rsplit(" ", 1)[1])
    return counted


def run_once(mode: str, n: int, sync: str, settings: Settings) -> tuple[float, float]:
    """Instances per second (the hub's clock) and worker CPU milliseconds per instance."""
    with fresh_hub(sync, settings) as bench, _workers(bench, settings, mode) as (ports, pids):
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        bench.client.start_instances([StartRequest("hello_cities", None) for _ in range(n)])
        _wait_done(bench, n, timeout=300, interval=0.005)
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        if mode == "metrics":
            wait_until(lambda: _activities_counted(ports) >= 3 * n, timeout=30, what="the metrics")
        return n / _span_s(bench), cpu * 1000 / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.observe", description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    settings = Settings(workers=args.workers)
    runs: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    started = time.monotonic()
    for round_no in range(args.rounds):
        shift = round_no % len(MODES)
        order = MODES[shift:] + MODES[:shift]
        for mode in order:
            rate, cpu_ms = run_once(mode, args.n, args.sync, settings)
            runs[mode].append(round(rate, 1))
            cpu[mode].append(round(cpu_ms, 3))
            print(
                f"round {round_no + 1} {mode}: {rate:.0f} instances/s, {cpu_ms:.2f} ms CPU", file=sys.stderr
            )
    medians = {mode: statistics.median(values) for mode, values in runs.items()}
    cpu_medians = {mode: statistics.median(values) for mode, values in cpu.items()}
    result = {
        "workload": f"hello_cities x {args.n}, {args.workers} workers, synchronous={args.sync}",
        "instances_per_s": {m: {"median": medians[m], "runs": runs[m]} for m in MODES},
        "cost_percent": {
            m: round(100 * (medians["off"] - medians[m]) / medians["off"], 1) for m in MODES[1:]
        },
        "worker_cpu_ms_per_instance": {m: {"median": cpu_medians[m], "runs": cpu[m]} for m in MODES},
        "cpu_cost_percent": {
            m: round(100 * (cpu_medians[m] - cpu_medians["off"]) / cpu_medians["off"], 1) for m in MODES[1:]
        },
        "goals_percent": {"metrics": 5, "tracing": 15, "tracing_otlp": 15, "tracing_otlp_10pct": 15},
        "seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "pid": os.getpid(),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
