"""Apps for the runtime and crash tests.

``gated_workflow`` calls an activity that waits until a gate file exists, so a test can hold an
activity in flight (leased by a known worker) for as long as it needs, without sleeping.
``chain`` calls ``step`` n times in sequence; ``fan`` calls it n times in parallel.
Each ``step`` appends a line to a runs file when ``DTCTL_TEST_RUNS`` is set: the crash tests compare
how often activity bodies ran (at least once) with how often history recorded them (exactly once).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dtctl

app = dtctl.App()


def _record_run(label: str) -> None:
    runs = os.environ.get("DTCTL_TEST_RUNS")
    if runs:
        with open(runs, "a", encoding="utf-8") as handle:
            handle.write(f"{label}\n")


@app.activity
def wait_for_gate(ctx: dtctl.ActivityContext, gate: str) -> str:
    path = Path(gate)
    while not path.exists():  # an external condition, polled as a real activity would
        time.sleep(0.01)
    return f"passed {path.name}"


@app.activity
def step(ctx: dtctl.ActivityContext, n: int) -> int:
    _record_run(f"{ctx.orchestration_id}:{ctx.task_id}")
    return n + 1


@app.orchestrator
def gated_workflow(ctx: dtctl.OrchestrationContext, gate: str):
    passed = yield ctx.call_activity(wait_for_gate, input=gate)
    after = yield ctx.call_activity(step, input=1)
    return [passed, after]


@app.orchestrator
def chain(ctx: dtctl.OrchestrationContext, n: int):
    value = 0
    for _ in range(n):
        value = yield ctx.call_activity(step, input=value)
    return value


@app.orchestrator
def fan(ctx: dtctl.OrchestrationContext, n: int):
    results = yield dtctl.when_all([ctx.call_activity(step, input=i) for i in range(n)])
    return sum(results)


@app.orchestrator
def parent(ctx: dtctl.OrchestrationContext, n: int):
    results = yield dtctl.when_all([ctx.call_sub_orchestrator(chain, input=2) for _ in range(n)])
    return sum(results)
