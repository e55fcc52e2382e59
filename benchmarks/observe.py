"""``python -m benchmarks.observe [--n 1000] [--rounds 5] [--sync full]``: what observability costs.

hello-cities (the §10 workload: N instances of three activities each, started at once, two worker
processes) in these modes:

- ``off``: no observability;
- ``metrics``: Prometheus metrics (every process serves /metrics; one scrape per run at the end checks
  the counts);
- ``tracing``: every span built and handed to an exporter that drops it (dtctl's instrumentation, the
  pipe to the worker's exporter process and the SDK's batching there);
- ``tracing_otlp``: as ``tracing``, each batch also encoded to OTLP protobuf the way
  ``OTEL_TRACES_EXPORTER=otlp`` does (:mod:`dtctl.observe.otlp`), the network aside;
- ``tracing_otlp_http``: the production path whole: ``OTEL_TRACES_EXPORTER=otlp`` posting to a small
  OTLP/HTTP sink in this process (which reads and discards each request);
- ``..._inline``: batched, encoded and sent in the worker process itself (``DTCTL_OTEL_EXPORT=inline``);
  ``tracing_otlp_sdk_inline`` encodes with the SDK's encoder, as the worker did before dtctl's own;
- ``tracing_otlp_10pct``: ``tracing_otlp`` with 10 % of instances sampled.

Each worker's exporter process is a child of it: its CPU is counted apart while the instances run
(``exporter_cpu_ms_per_instance``) and with the worker's through the exit (``..._with_exit``).
The modes alternate within each round (in a rotated order) on fresh hubs, so a busy machine slows each
alike; the figures are medians over the rounds, as instances per second (the hub's clock) and worker CPU
per instance (less noisy on a shared machine), counted two ways: while the instances ran
(``worker_cpu_ms_per_instance``), and through the workers' exit with their exporter processes
(``..._with_exit``), which adds the spans still batched at the end, flushed at the SIGTERM drain, and
the same stop for every mode.
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
from pathlib import Path
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
    "tracing_inline",
    "tracing_otlp",
    "tracing_otlp_http",
    "tracing_otlp_http_inline",
    "tracing_otlp_sdk_inline",
    "tracing_otlp_10pct",
)
EXPORTERS = {
    "tracing": "drop_processor",
    "tracing_otlp": "encode_processor",
    "tracing_otlp_sdk": "sdk_encode_processor",
}


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
    base = mode.removesuffix("_10pct").removesuffix("_inline")
    if base == "tracing_otlp_http":
        env["OTEL_TRACES_EXPORTER"] = "otlp"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink or ""
    elif base in EXPORTERS:
        env["DTCTL_OTEL_SPAN_EXPORTER"] = f"benchmarks.observe:{EXPORTERS[base]}"
    if mode.endswith("_inline"):  # batched, encoded and sent in the worker process itself
        env["DTCTL_OTEL_EXPORT"] = "inline"
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


def _children(pids: list[int]) -> list[int]:
    """The child processes of ``pids`` (the exporter processes of traced workers)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, ValueError):
            if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) in pids:
                found.append(int(entry))
    return found


def _settle(pids: list[int]) -> None:
    """Wait until the exporter processes have finished starting (their CPU stands still for 0.2 s), so
    their imports are not counted against the instances."""
    last = -1.0
    for _ in range(100):
        now = sum(cpu_seconds(pid) for pid in pids)
        if now == last:
            return
        last = now
        time.sleep(0.2)


def run_once(mode: str, n: int, sync: str, settings: Settings) -> tuple[float, float, float, float]:
    """Instances per second (the hub's clock); CPU milliseconds per instance of the workers and of their
    exporter processes while the instances ran; of both through the workers' exit."""
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(_otlp_sink()) if "otlp_http" in mode else None
        bench = stack.enter_context(fresh_hub(sync, settings))
        ports, group = stack.enter_context(_workers(bench, settings, mode, sink))
        exporters = _children(group.pids) if mode.startswith("tracing") else []
        _settle(exporters)
        cpu_before = sum(cpu_seconds(pid) for pid in group.pids)
        exporter_before = sum(cpu_seconds(pid) for pid in exporters)
        bench.client.start_instances([StartRequest("hello_cities", None) for _ in range(n)])
        _wait_done(bench, n, timeout=300, interval=0.005)
        cpu = sum(cpu_seconds(pid) for pid in group.pids) - cpu_before
        exporter_cpu = sum(cpu_seconds(pid) for pid in exporters) - exporter_before
        if mode == "metrics":
            wait_until(lambda: _activities_counted(ports) >= 3 * n, timeout=30, what="the metrics")
        to_exit = _stop_counting(group) - cpu_before - exporter_before  # wait4: reaped children included
        return n / _span_s(bench), cpu * 1000 / n, exporter_cpu * 1000 / n, to_exit * 1000 / n


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
    exporter: dict[str, list[float]] = {mode: [] for mode in modes}
    started = time.monotonic()
    for round_no in range(args.rounds):
        shift = round_no % len(modes)
        order = modes[shift:] + modes[:shift]
        for mode in order:
            rate, cpu_ms, exporter_ms, exit_ms = run_once(mode, args.n, args.sync, settings)
            runs[mode].append(round(rate, 1))
            cpu[mode].append(round(cpu_ms, 3))
            exporter[mode].append(round(exporter_ms, 3))
            cpu_exit[mode].append(round(exit_ms, 3))
            print(
                f"round {round_no + 1} {mode}: {rate:.0f} instances/s, {cpu_ms:.2f} ms worker CPU,"
                f" {exporter_ms:.2f} ms exporter CPU, {exit_ms:.2f} ms both to exit",
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
        "exporter_cpu_ms_per_instance": {
            m: {"median": statistics.median(exporter[m]), "runs": exporter[m]} for m in modes
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
