"""An app for the storage and clock fault tests: activities held in flight until a gate file exists.

``held_workflow`` calls ``hold`` (which records each run of its body in ``DTCTL_TEST_RUNS`` and then
waits for the gate), then ``finish``. A test can keep every activity leased for as long as it needs,
count how often each body ran, and release them all at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dtctl

app = dtctl.App()


@app.activity
def hold(ctx: dtctl.ActivityContext, gate: str) -> str:
    runs = os.environ.get("DTCTL_TEST_RUNS")
    if runs:
        with open(runs, "a", encoding="utf-8") as handle:
            handle.write(f"{ctx.orchestration_id}\n")
    path = Path(gate)
    while not path.exists():  # an external condition, polled as a real activity would
        time.sleep(0.01)
    return ctx.orchestration_id


@app.activity
def finish(ctx: dtctl.ActivityContext, value: str) -> str:
    return f"done {value}"


@app.orchestrator
def held_workflow(ctx: dtctl.OrchestrationContext, gate: str):
    held = yield ctx.call_activity(hold, input=gate)
    return (yield ctx.call_activity(finish, input=held))
