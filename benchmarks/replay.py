"""Replay cost per episode against history length (linear cold, flat warm).

``python -m benchmarks.replay`` prints one JSON object. For each history length h the orchestrator has
called about h/2 activities in sequence (task_scheduled + task_completed pairs) and waits on the next:

- cold: one episode from scratch, ``execute(history, new)``: the whole history is replayed;
- cold_decode: the same, starting from the stored JSON rows (decode + replay);
- warm: ``resume(new)`` on an executor that already holds the state at length h (the worker's cache),
  one new completion per episode, over a hundred consecutive episodes.

Each figure is a median in microseconds; the cold runs of all lengths are interleaved round by round.
- cold_load: the same again, loading the rows from a real SQLite hub file first (``load_history``):
  what a worker pays on a cache miss.

``ratio_10k_1k`` is cold(10k) / cold(1k) (DESIGN bar: <= 12); ``warm_ratio_10k_10`` should stay near 1.
``python -m benchmarks replay`` runs this as one workload of the whole suite.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Generator
from typing import Any

from dtctl.core.context import OrchestrationContext
from dtctl.core.history import (
    ExecutionStarted,
    HistoryEvent,
    OrchestratorStarted,
    TaskCompleted,
    TaskScheduled,
    decode_event,
    encode_event,
)
from dtctl.core.replay import OrchestrationExecutor, execute
from dtctl.core.task import Task

LENGTHS = (10, 100, 1_000, 10_000)
START = 1_700_000_000_000_000  # epoch µs
STEP = 1_000  # µs between episodes


def chain(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, int]:
    """Activities in sequence, forever: every completion schedules the next one."""
    step = 0
    while True:
        step = yield ctx.call_activity("step", input=step)


def history_of_length(length: int) -> tuple[list[HistoryEvent], int]:
    """A history of exactly ``length`` events whose last event schedules the task it waits for.

    [orchestrator_started, execution_started, task_scheduled 0] then (task_completed n, task_scheduled
    n + 1) pairs; an odd remainder becomes one more episode marker. Returns it with the awaited task id.
    """
    events: list[HistoryEvent] = [
        OrchestratorStarted(timestamp=START),
        ExecutionStarted(timestamp=START, name="chain", instance_id="bench", execution_id="e1"),
        TaskScheduled(timestamp=START, task_id=0, name="step", input="0"),
    ]
    task_id = 0
    while len(events) + 2 <= length:
        events.append(TaskCompleted(timestamp=START, task_id=task_id, result=str(task_id + 1)))
        task_id += 1
        events.append(TaskScheduled(timestamp=START, task_id=task_id, name="step", input=str(task_id)))
    if len(events) < length:
        events.insert(len(events) - 2, OrchestratorStarted(timestamp=START + STEP))
    return events, task_id


def next_episode(task_id: int) -> list[HistoryEvent]:
    """What a worker feeds for the next episode: its marker and the one new completion."""
    at = START + STEP * (task_id + 10)
    return [
        OrchestratorStarted(timestamp=at),
        TaskCompleted(timestamp=at, task_id=task_id, result=str(task_id + 1)),
    ]


def _timed_us(run: Callable[[], object]) -> float:
    gc.collect()  # before the untimed run: a collection walks every object and leaves the caches cold
    run()  # untimed: the allocator and caches settle after whatever ran before
    started = time.perf_counter_ns()
    run()
    return (time.perf_counter_ns() - started) / 1000


def round_robin_medians(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median µs of each run, taking one sample of every run per round.

    Interleaving spreads any passing load on the machine over all lengths alike, so the ratios
    between lengths (what DESIGN §10 bounds) hold even when the absolute figures wobble.
    """
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(_timed_us(run))
    return {name: round(statistics.median(values), 1) for name, values in samples.items()}


def warm_median_us(history: list[HistoryEvent], waiting_on: int, episodes: int) -> float:
    """Consecutive warm episodes on one executor already at the history's length.

    Each episode adds three events, so the executor stays at about h; the first few are left out
    (they pay for the allocator refilling after the cold replay that built the state).
    """
    executor = OrchestrationExecutor(chain)
    executor.execute(history, [])
    samples = []
    for offset in range(episodes + 5):
        new = next_episode(waiting_on + offset)
        started = time.perf_counter_ns()
        decision = executor.resume(new)
        samples.append((time.perf_counter_ns() - started) / 1000)
        assert len(decision.actions) == 1
    return round(statistics.median(samples[5:]), 1)


def episode_runs(length: int) -> tuple[Callable[[], object], Callable[[], object], list[HistoryEvent], int]:
    """The cold and cold-with-decode episodes at ``length``, plus the history and the awaited task."""
    history, waiting_on = history_of_length(length)
    assert len(history) == length
    new = next_episode(waiting_on)
    rows = [encode_event(event) for event in history]
    decision = execute(chain, history, new)
    assert decision.status == "RUNNING" and decision.failure is None, decision.failure

    def cold() -> None:
        execute(chain, history, new)

    def cold_decode() -> None:
        execute(chain, [decode_event(row) for row in rows], new)

    return cold, cold_decode, history, waiting_on


HubLoader = Callable[[int, list[HistoryEvent]], Callable[[], list[HistoryEvent]]]


def measure(
    rounds: int = 25, lengths: tuple[int, ...] = LENGTHS, loader: HubLoader | None = None
) -> dict[str, dict[str, float]]:
    """Median µs per episode at each history length; ``loader`` adds the cold episode from a hub."""
    runs: dict[str, Callable[[], object]] = {}
    warm: dict[str, float] = {}
    for length in lengths:
        cold, cold_decode, history, waiting_on = episode_runs(length)
        runs[f"{length}/cold_us"] = cold
        runs[f"{length}/cold_decode_us"] = cold_decode
        if loader is not None:
            load = loader(length, history)
            new = next_episode(waiting_on)

            def cold_load(
                load: Callable[[], list[HistoryEvent]] = load, new: list[HistoryEvent] = new
            ) -> None:
                execute(chain, load(), new)

            runs[f"{length}/cold_load_us"] = cold_load
        warm[str(length)] = warm_median_us(history, waiting_on, 101)
    medians = round_robin_medians(runs, rounds)
    results: dict[str, dict[str, float]] = {}
    for length in lengths:
        figures = {
            "history_length": length,
            "cold_us": medians[f"{length}/cold_us"],
            "cold_decode_us": medians[f"{length}/cold_decode_us"],
            "warm_us": warm[str(length)],
        }
        if loader is not None:
            figures["cold_load_us"] = medians[f"{length}/cold_load_us"]
        results[str(length)] = figures
    return results


def ratios(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """The figures DESIGN §10 bounds, from ``measure``'s results (when it measured those lengths)."""
    out: dict[str, float] = {}
    if "1000" in results and "10000" in results:
        out["ratio_10k_1k"] = round(results["10000"]["cold_us"] / results["1000"]["cold_us"], 2)
        out["cold_us_per_event_10k"] = round(results["10000"]["cold_us"] / 10_000, 3)
        out["cold_decode_us_per_event_10k"] = round(results["10000"]["cold_decode_us"] / 10_000, 3)
        if "cold_load_us" in results["10000"]:
            out["cold_load_us_per_event_10k"] = round(results["10000"]["cold_load_us"] / 10_000, 3)
    first, last = min(results, key=int), max(results, key=int)
    if first != last:
        name = "warm_ratio_10k_10" if (first, last) == ("10", "10000") else f"warm_ratio_{last}_{first}"
        out[name] = round(results[last]["warm_us"] / results[first]["warm_us"], 2)
    return out


def main() -> None:
    measure(rounds=2)  # warm up: imports, caches, the allocator
    results = measure()
    report = {
        "benchmark": "replay",
        "unit": "microseconds per episode (median)",
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "results": results,
        **ratios(results),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
