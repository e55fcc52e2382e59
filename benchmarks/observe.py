"""``python -m benchmarks.observe [--n 1000] [--rounds 5] [--sync full]``: what observability costs.

hello-cities (the §10 workload: N instances of three activities each, started at once, two worker
processes) in these modes:

- ``off``: no observability;
- ``metrics``: Prometheus metrics (every process serves /metrics; one scrape per run at the end checks
  the counts);
- ``tracing``: every span built and handed to a BatchSpanProcessor whose exporter drops it (dtctl's
  instrumentation and the SDK's batching);
- ``tracing_otlp``: as ``tracing``, each batch also encoded to OTLP protobuf the way
  ``OTEL_TRACES_EXPORTER=otlp`` does (:mod:`dtctl.observe.otlp`), the network aside;
  ``tracing_otlp_sdk``: encoded by the SDK's encoder instead (what ``otlp_proto_http`` does);
- ``tracing_otlp_http``: the production path whole: ``OTEL_TRACES_EXPORTER=otlp`` posting to a small
  OTLP/HTTP sink in this process (which reads and discards each request);
- ``tracing_otlp_10pct``: ``tracing_otlp`` with 10 % of instances sampled.

The modes alternate within each round (in a rotated order) on fresh hubs, so a busy machine slows each
alike; the figures are medians over the rounds, as instances per second (the hub's clock) and worker CPU
per instance (less noisy on a shared machine), counted two ways: while the instances ran
(``worker_cpu_ms_per_instance``), and through the workers' exit (``..._with_exit``), which adds the
spans still batched at the end, flushed at the SIGTERM drain, and the same stop for every mode.
Prints one JSON object; progress on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

MODES = (
    "off",
    "metrics",
    "tracing",
    "tracing_otlp",
    "tracing_otlp_sdk",
    "tracing_otlp_http",
    "tracing_otlp_10pct",
)


class _DropExporter:
    """Drops each batch; with ``encode``, first encodes it as the OTLP exporter would send it."""

    def __init__(self, encode: str | None) -> None:
        self._encode = encode

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self._encode == "sdk":
            from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

            encode_spans(spans).SerializeToString()
        elif self._encode == "dtctl":
            from dtctl.observe.otlp import encode_request

            encode_request(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def drop_processor() -> Any:
    """``DTCTL_OTEL_SPAN_EXPORTER=benchmarks.observe:drop_processor``: spans built and batched."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(_DropExporter(None))  # type: ignore[arg-type]


def encode_processor() -> Any:
    """``…:encode_processor``: spans built, batched and encoded to OTLP protobuf as
    ``OTEL_TRACES_EXPORTER=otlp`` does (the network aside)."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(_DropExporter("dtctl"))  # type: ignore[arg-type]


def sdk_encode_processor() -> Any:
    """``…:sdk_encode_processor``: encoded by the OpenTelemetry SDK's OTLP encoder instead."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(_DropExporter("sdk"))  # type: ignore[arg-type]


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that reads each request and answers 200 with an empty response."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _otlp_sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _workers(
    bench: BenchHub, settings: Settings, mode: str, sink: str | None = None
) -> Iterator[tuple[list[int], Workers]]:
    """The harness's worker processes, each with its own metrics port in ``metrics`` mode."""
    env = child_env()
    if mode == "tracing_otlp_http":
        env["OTEL_TRACES_EXPORTER"] = "otlp"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink or ""
    elif mode.startswith("tracing"):
        factory = {"tracing": "drop_processor", "tracing_otlp_sdk": "sdk_encode_processor"}
        env["DTCTL_OTEL_SPAN_EXPORTER"] = f"benchmarks.observe:{factory.get(mode, 'encode_processor')}"
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
        yield ports, group
    finally:
        group.stop()


def _stop_counting(group: Workers) -> float:
    """Drain the workers (SIGTERM) and reap them: their whole CPU seconds, every thread, to the exit."""
    for process in group.processes:
        process.send_signal(signal.SIGTERM)
    total = 0.0
    for process in group.processes:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        total += usage.ru_utime + usage.ru_stime
    return total


def _activities_counted(ports: list[int]) -> float:
    counted = 0.0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith('dtctl_work_items_completed_total{kind="activity"'):
                    counted += float(line.rsplit(" ", 1)[1])
    return counted


def run_once(mode: str, n: int, sync: str, settings: Settings) -> tuple[float, float, float]:
    """Instances per second (the hub's clock), and worker CPU milliseconds per instance while they ran
    and through the workers' exit."""
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(_otlp_sink()) if mode == "tracing_otlp_http" else None
        bench = stack.enter_context(fresh_hub(sync, settings))
        ports, group = stack.enter_context(_workers(bench, settings, mode, sink))
        cpu_before = sum(cpu_seconds(pid) for pid in group.pids)
        bench.client.start_instances([StartRequest("hello_cities", None) for _ in range(n)])
        _wait_done(bench, n, timeout=300, interval=0.005)
        cpu = sum(cpu_seconds(pid) for pid in group.pids) - cpu_before
        if mode == "metrics":
            wait_until(lambda: _activities_counted(ports) >= 3 * n, timeout=30, what="the metrics")
        to_exit = _stop_counting(group) - cpu_before
        return n / _span_s(bench), cpu * 1000 / n, to_exit * 1000 / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.observe", description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, 'off' first")
    args = parser.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m in MODES)
    settings = Settings(workers=args.workers)
    runs: dict[str, list[float]] = {mode: [] for mode in modes}
    cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    cpu_exit: dict[str, list[float]] = {mode: [] for mode in modes}
    started = time.monotonic()
    for round_no in range(args.rounds):
        shift = round_no % len(modes)
        order = modes[shift:] + modes[:shift]
        for mode in order:
            rate, cpu_ms, exit_ms = run_once(mode, args.n, args.sync, settings)
            runs[mode].append(round(rate, 1))
            cpu[mode].append(round(cpu_ms, 3))
            cpu_exit[mode].append(round(exit_ms, 3))
            print(
                f"round {round_no + 1} {mode}: {rate:.0f} instances/s, {cpu_ms:.2f} ms CPU"
                f" ({exit_ms:.2f} ms to exit)",
                file=sys.stderr,
            )
    medians = {mode: statistics.median(values) for mode, values in runs.items()}
    cpu_medians = {mode: statistics.median(values) for mode, values in cpu.items()}
    exit_medians = {mode: statistics.median(values) for mode, values in cpu_exit.items()}
    result = {
        "workload": f"hello_cities x {args.n}, {args.workers} workers, synchronous={args.sync}",
        "instances_per_s": {m: {"median": medians[m], "runs": runs[m]} for m in modes},
        "cost_percent": {
            m: round(100 * (medians["off"] - medians[m]) / medians["off"], 1) for m in modes[1:]
        },
        "worker_cpu_ms_per_instance": {m: {"median": cpu_medians[m], "runs": cpu[m]} for m in modes},
        "cpu_cost_percent": {
            m: round(100 * (cpu_medians[m] - cpu_medians["off"]) / cpu_medians["off"], 1) for m in modes[1:]
        },
        "worker_cpu_ms_per_instance_with_exit": {
            m: {"median": exit_medians[m], "runs": cpu_exit[m]} for m in modes
        },
        "cpu_cost_percent_with_exit": {
            m: round(100 * (exit_medians[m] - exit_medians["off"]) / exit_medians["off"], 1)
            for m in modes[1:]
        },
        "goals_percent": {"metrics": 5, **{m: 15 for m in MODES if m.startswith("tracing")}},
        "load_average": os.getloadavg(),
        "seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "pid": os.getpid(),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
