"""Every benchmark workload runs at a tiny size, so the benchmark code cannot rot.

``python -m benchmarks --quick`` is what a user runs, with real worker processes on real hub files.
Nothing here compares a figure with a bar: timings on a shared test machine say nothing. The report
must only be complete and its figures sane.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

from benchmarks.harness import percentile, summarize
from benchmarks.workloads import WORKLOADS
from tests.helpers import REPO, child_env

EXPECTED = {"hello_cities", "fan_out", "latency", "chain", "replay", "submit", "memory", "storage"}


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def figures_of(report: dict[str, Any], workload: str, mode: str) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = report["workloads"][workload][mode]
    for name, figure in figures.items():
        assert set(figure) == {"median", "min", "max", "runs"}, (workload, name)
        assert figure["min"] <= figure["median"] <= figure["max"], (workload, name, figure)
        assert all(math.isfinite(v) and v >= 0 for v in figure["runs"]), (workload, name, figure)
    return figures


def test_every_workload_runs_at_a_tiny_size_in_both_modes() -> None:
    result = run_benchmarks("--quick")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    assert set(report["workloads"]) == set(WORKLOADS) == EXPECTED
    assert {"cores", "python", "sqlite"} <= set(report["machine"])
    assert report["config"]["synchronous"] == ["full", "normal"]
    assert report["config"]["worker_processes"] == 2
    assert report["config"]["max_orchestrations"] > 0 and report["config"]["max_activities"] > 0

    for name in EXPECTED - {"replay"}:
        for mode in ("full", "normal"):
            figures = figures_of(report, name, mode)
            assert figures, (name, mode)
    full = {name: figures_of(report, name, "full") for name in EXPECTED}
    assert full["hello_cities"]["instances_per_s"]["median"] > 0
    assert full["hello_cities"]["p95_ms"]["median"] >= full["hello_cities"]["p50_ms"]["median"]
    assert full["fan_out"]["seconds"]["median"] > 0
    assert full["chain"]["seconds"]["median"] > 0
    assert full["latency"]["p95_ms"]["median"] >= full["latency"]["p50_ms"]["median"] > 0
    assert full["submit"]["single_per_s"]["median"] > 0 and full["submit"]["batched_per_s"]["median"] > 0
    assert full["memory"]["idle_rss_mb"]["median"] > 0
    assert full["memory"]["in_flight_rss_mb"]["median"] > 0
    assert full["storage"]["bytes_per_instance"]["median"] > 0
    assert full["storage"]["history_rows_per_instance"]["median"] == 12  # hello-cities-3's history
    # replay reads only: measured once, cold and warm at each (tiny) history length
    assert "normal" not in report["workloads"]["replay"]
    for length in report["workloads"]["replay"]["params"]["history_lengths"]:
        for kind in ("cold_us", "cold_decode_us", "cold_load_us", "warm_us"):
            assert full["replay"][f"{kind}_{length}"]["median"] > 0


def test_one_workload_mode_and_size_can_be_chosen() -> None:
    result = run_benchmarks("submit", "--n", "5", "--runs", "2", "--sync", "normal")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report["workloads"]) == ["submit"]
    submit = report["workloads"]["submit"]
    assert "full" not in submit and submit["params"]["single"] == 5
    assert len(submit["normal"]["single_per_s"]["runs"]) == 2


def test_an_unknown_workload_is_a_usage_error() -> None:
    result = run_benchmarks("no_such_workload")
    assert result.returncode == 2
    assert "unknown workload" in result.stderr


def test_summary_statistics() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0
    summary = summarize([{"x": 3.0}, {"x": 1.0}, {"x": 2.0}])
    assert summary["x"] == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": [3.0, 1.0, 2.0]}


def test_every_hot_statement_has_an_index_path() -> None:
    """``python -m benchmarks.plans``: EXPLAIN QUERY PLAN of the hot statements, with and without ANALYZE."""
    result = run_benchmarks_module("benchmarks.plans")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for found in report.values():
        assert {name for name, entry in found.items() if not entry["ok"]} == set()
        assert "PICK_INSTANCES" in found and "LEASE_TASKS" in found


def run_benchmarks_module(module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module], cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=300
    )
