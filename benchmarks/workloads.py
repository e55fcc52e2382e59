"""The workloads of DESIGN §10. Each run function does one run on a fresh hub and returns flat figures.

Durations of work done by workers come from the hub's own timestamps (``created_at`` when the client's
transaction ran, ``completed_at`` when the final checkpoint ran), so the benchmark's polling does not
add to them; ``latency`` is the exception on purpose: it is what a client waiting for the result sees
through :meth:`dtctl.client.TaskHubClient.wait_for_completion`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import replay
from benchmarks.harness import (
    BenchHub,
    Settings,
    cpu_seconds,
    percentile,
    rss_kb,
    wait_until,
    workers,
)
from dtctl.client import StartRequest
from dtctl.core.history import HistoryEvent

Figures = dict[str, float]


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    run: Callable[[BenchHub, Settings], Figures]
    params: Callable[[Settings], dict[str, Any]]
    summary: str
    uses_hub_writes: bool = True  # False: the figures do not depend on the synchronous mode


def _wait_done(bench: BenchHub, expected: int, *, timeout: float, interval: float = 0.002) -> None:
    wait_until(
        lambda: bench.unfinished() == 0 and _finished(bench) >= expected,
        timeout=timeout,
        interval=interval,
        what=f"{expected} instances to finish",
    )


def _finished(bench: BenchHub) -> int:
    return int(bench.sql("SELECT COUNT(*) FROM instances WHERE status = 'COMPLETED'")[0][0])


def _durations_ms(bench: BenchHub) -> list[float]:
    rows = bench.sql("SELECT completed_at - created_at FROM instances WHERE status = 'COMPLETED'")
    return [r[0] / 1000 for r in rows]


def _span_s(bench: BenchHub) -> float:
    """From the first instance's start to the last one's completion, by the hub's clock."""
    first, last = bench.sql("SELECT MIN(created_at), MAX(completed_at) FROM instances")[0]
    return float(last - first) / 1e6


# --- hello_cities: throughput ---------------------------------------------------------------------------


def _hello_cities_params(s: Settings) -> dict[str, Any]:
    return {"instances": s.size(1000, 20), "workers": s.workers}


def run_hello_cities(bench: BenchHub, settings: Settings) -> Figures:
    n = _hello_cities_params(settings)["instances"]
    requests = [StartRequest("hello_cities", None) for _ in range(n)]
    with workers(bench, settings) as group:
        cpu_before = sum(cpu_seconds(pid) for pid in group.pids)
        started = time.perf_counter()
        bench.client.start_instances(requests)
        _wait_done(bench, n, timeout=300, interval=0.005)
        wall = time.perf_counter() - started
        cpu = sum(cpu_seconds(pid) for pid in group.pids) - cpu_before
    span = _span_s(bench)
    durations = _durations_ms(bench)
    counts = group.counts()
    return {
        "instances_per_s": n / span,
        "wall_s": wall,
        "p50_ms": percentile(durations, 0.5),
        "p95_ms": percentile(durations, 0.95),
        "worker_cpu_ms_per_instance": cpu * 1000 / n,
        "warm_episode_share": counts["episodes_warm"] / max(1, counts["episodes"]),
    }


# --- fan_out / chain: one big instance ---------------------------------------------------------------


def _fan_out_params(s: Settings) -> dict[str, Any]:
    return {"activities": s.size(1000, 20), "workers": s.workers}


def run_fan_out(bench: BenchHub, settings: Settings) -> Figures:
    return _one_instance(bench, settings, "fan_out", _fan_out_params(settings)["activities"])


def _chain_params(s: Settings) -> dict[str, Any]:
    return {"activities": s.size(1000, 10), "workers": s.workers}


def run_chain(bench: BenchHub, settings: Settings) -> Figures:
    return _one_instance(bench, settings, "chain", _chain_params(settings)["activities"])


def _one_instance(bench: BenchHub, settings: Settings, name: str, n: int) -> Figures:
    with workers(bench, settings) as group:
        cpu_before = sum(cpu_seconds(pid) for pid in group.pids)
        instance_id = bench.client.start_instance(name, input=n)
        _wait_done(bench, 1, timeout=300, interval=0.002)
        cpu = sum(cpu_seconds(pid) for pid in group.pids) - cpu_before
    state = bench.client.get_instance(instance_id)
    assert state is not None and bench.client.decode_output(state) == n, state
    return {
        "seconds": _span_s(bench),
        "worker_cpu_s": cpu,
        "history_events": state.history_length,
        "episodes_loaded": group.counts()["episodes_loaded"],  # cache misses (history replayed)
    }


# --- latency: one at a time on idle workers ------------------------------------------------------------


def _latency_params(s: Settings) -> dict[str, Any]:
    return {
        "samples": s.size(30, 3),
        "idle_gap_s": 0.02 if s.quick else 0.25,
        "timer_samples": 1 if s.quick else 3,
        "timer_s": 0.05 if s.quick else 0.3,
        "workers": s.workers,
    }


def run_latency(bench: BenchHub, settings: Settings) -> Figures:
    params = _latency_params(settings)
    seen: list[float] = []
    timer_late: list[float] = []
    with workers(bench, settings):
        time.sleep(params["idle_gap_s"])
        for _ in range(params["samples"]):
            instance_id = uuid.uuid4().hex
            started = time.perf_counter()
            bench.client.start_instance("hello_cities", instance_id=instance_id)
            _poll_completed(bench, instance_id)
            seen.append((time.perf_counter() - started) * 1000)
            time.sleep(params["idle_gap_s"])  # the workers go idle again (their poll backs off)
        for _ in range(params["timer_samples"]):
            instance_id = bench.client.start_instance("sleeper", input=int(params["timer_s"] * 1e6))
            _poll_completed(bench, instance_id, timeout=60)
            state = bench.client.get_instance(instance_id)
            assert state is not None
            timer_late.append(bench.client.decode_output(state) / 1000)
            time.sleep(params["idle_gap_s"])
    return {
        "p50_ms": percentile(seen, 0.5),
        "p95_ms": percentile(seen, 0.95),
        "timer_late_p50_ms": percentile(timer_late, 0.5),
        "timer_late_max_ms": max(timer_late),
    }


def _poll_completed(bench: BenchHub, instance_id: str, timeout: float = 30) -> None:
    """What a client waiting for the result does: ``TaskHubClient.wait_for_completion`` (as ``dtctl
    wait`` and ``start-instance --wait``), which sleeps on the hub's wake source."""
    state = bench.client.wait_for_completion(instance_id, timeout=timeout)
    if state.status != "COMPLETED":
        raise RuntimeError(f"instance {instance_id} ended {state.status}")


# --- replay: episode cost against history length ---------------------------------------------------------


def _replay_params(s: Settings) -> dict[str, Any]:
    lengths = (10, 100) if s.quick else replay.LENGTHS
    return {"history_lengths": list(lengths), "rounds": 2 if s.quick else 15}


def run_replay(bench: BenchHub, settings: Settings) -> Figures:
    params = _replay_params(settings)
    lengths = tuple(params["history_lengths"])
    loader = _hub_loader(bench)
    replay.measure(rounds=1, lengths=lengths, loader=loader)  # warm up
    results = replay.measure(rounds=params["rounds"], lengths=lengths, loader=loader)
    figures: Figures = {}
    for length, row in results.items():
        for key in ("cold_us", "cold_decode_us", "cold_load_us", "warm_us"):
            figures[f"{key}_{length}"] = row[key]
    figures.update(replay.ratios(results))
    return figures


def _hub_loader(bench: BenchHub) -> replay.HubLoader:
    """Store the benchmark history in the run's hub; returns how to load it back (``load_history``)."""
    from dtctl.core.history import encode_event

    made: dict[int, Callable[[], list[HistoryEvent]]] = {}

    def loader(length: int, history: list[HistoryEvent]) -> Callable[[], list[HistoryEvent]]:
        if length in made:
            return made[length]
        instance_id = f"replay-{length}"
        bench.client.start_instance("chain", input=0, instance_id=instance_id)
        state = bench.client.get_instance(instance_id)
        assert state is not None
        with contextlib.closing(sqlite3.connect(bench.path, isolation_level=None)) as db:
            key = db.execute(
                "SELECT instance_key, execution_no FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO history (instance_key, execution_no, sequence, payload) VALUES (?, ?, ?, ?)",
                [(key[0], key[1], i, encode_event(e)) for i, e in enumerate(history)],
            )
            db.execute("COMMIT")
        hub, execution_id = bench.hub, state.execution_id

        def load() -> list[HistoryEvent]:
            return hub.load_history(instance_id, execution_id)

        made[length] = load
        return load

    return loader


# --- submit: the start rate of one client -------------------------------------------------------------------


def _submit_params(s: Settings) -> dict[str, Any]:
    return {
        "single": s.size(500, 10),
        "batched": 5 * s.size(1000, 10),
        "batch_size": s.size(1000, 10),
    }


def run_submit(bench: BenchHub, settings: Settings) -> Figures:
    params = _submit_params(settings)
    client = bench.client
    started = time.perf_counter()
    for _ in range(params["single"]):
        client.start_instance("hello_cities")
    single = params["single"] / (time.perf_counter() - started)
    size = params["batch_size"]
    batches = [[StartRequest("hello_cities") for _ in range(size)] for _ in range(params["batched"] // size)]
    started = time.perf_counter()
    for batch in batches:
        client.start_instances(batch)
    batched = params["batched"] / (time.perf_counter() - started)
    return {"single_per_s": single, "batched_per_s": batched}


# --- memory: worker RSS ---------------------------------------------------------------------------------


def _memory_params(s: Settings) -> dict[str, Any]:
    return {"in_flight": s.size(1000, 10), "workers": 1, "idle_s": 0.3 if s.quick else 1.0}


def run_memory(bench: BenchHub, settings: Settings) -> Figures:
    params = _memory_params(settings)
    n = params["in_flight"]
    with workers(bench, settings, count=1) as group:
        pid = group.pids[0]
        time.sleep(params["idle_s"])
        idle = rss_kb(pid)
        ids = bench.client.start_instances([StartRequest("waiter", None) for _ in range(n)])
        wait_until(
            lambda: (
                bench.sql("SELECT COUNT(*) FROM instances WHERE status = 'RUNNING' AND history_length > 0")[
                    0
                ][0]
                >= n
            ),
            timeout=120,
            interval=0.01,
            what="every waiter to be in flight",
        )
        time.sleep(0.2)
        in_flight = rss_kb(pid)
        for instance_id in ids:
            bench.client.raise_event(instance_id, "go", 1)
        _wait_done(bench, n, timeout=120, interval=0.01)
        after = rss_kb(pid)
    return {
        "idle_rss_mb": idle.get("VmRSS", 0) / 1024,
        "in_flight_rss_mb": in_flight.get("VmRSS", 0) / 1024,
        "peak_rss_mb": after.get("VmHWM", 0) / 1024,
    }


# --- storage: bytes per completed instance ---------------------------------------------------------------


def _storage_params(s: Settings) -> dict[str, Any]:
    return {"instances": s.size(1000, 20), "workers": s.workers}


def run_storage(bench: BenchHub, settings: Settings) -> Figures:
    n = _storage_params(settings)["instances"]
    empty = _compacted_bytes(bench.path)
    with workers(bench, settings):
        bench.client.start_instances([StartRequest("hello_cities", None) for _ in range(n)])
        _wait_done(bench, n, timeout=300, interval=0.005)
    bench.close()  # VACUUM needs every other connection gone
    full = _compacted_bytes(bench.path)
    with contextlib.closing(sqlite3.connect(bench.path)) as db:
        rows, payload = db.execute("SELECT COUNT(*), SUM(length(payload)) FROM history").fetchone()
        objects = dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    # The work log (dtctl top's timings) keeps the last few minutes of finished work items, whatever
    # the number of instances: it is reported on its own, not as storage per instance.
    rolling = sum(size for name, size in objects.items() if name.startswith("work_log"))
    return {
        "bytes_per_instance": (full - empty - rolling) / n,
        "history_rows_per_instance": rows / n,
        "history_payload_bytes_per_row": payload / rows,
        "history_table_bytes_per_instance": objects.get("history", 0) / n,
        "instances_table_bytes_per_instance": objects.get("instances", 0) / n,
        "work_log_bytes_per_instance": rolling / n,
    }


def _compacted_bytes(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "hello_cities",
            run_hello_cities,
            _hello_cities_params,
            "N hello-cities-3 started at once (batch API) until all complete: instances/s, p50/p95 ms",
        ),
        Workload(
            "fan_out", run_fan_out, _fan_out_params, "one instance, N parallel no-op activities: seconds"
        ),
        Workload(
            "latency",
            run_latency,
            _latency_params,
            "one hello-cities-3 at a time on idle workers, start -> client sees COMPLETED: ms",
        ),
        Workload("chain", run_chain, _chain_params, "one instance, N sequential activities: seconds"),
        Workload(
            "replay",
            run_replay,
            _replay_params,
            "episode cost (µs) against history length: cold, cold from the hub, warm",
            uses_hub_writes=False,
        ),
        Workload("submit", run_submit, _submit_params, "start-instance rate of one client: single, batched"),
        Workload(
            "memory",
            run_memory,
            _memory_params,
            "worker process RSS idle and with N instances in flight (one process): MB",
        ),
        Workload(
            "storage", run_storage, _storage_params, "hub bytes per completed hello-cities-3 (vacuumed)"
        ),
    )
}
