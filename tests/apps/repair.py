"""Apps for the rewind / restart tests: activities count their runs in files, failing while a switch is on.

Worker processes run these, so a count kept in a variable would live in another process: each run
appends a line to ``$REPAIR_TEST_DIR/<instance>.<activity>.runs``, and an activity fails while the file
``$REPAIR_TEST_DIR/fail.<activity>`` (or ``fail.<instance>.<activity>``) exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import dtctl

app = dtctl.App()


def _dir() -> Path:
    return Path(os.environ["REPAIR_TEST_DIR"])


def runs(directory: Path, instance_id: str, activity: str) -> int:
    """How many times ``activity`` ran for ``instance_id``."""
    path = directory / f"{instance_id}.{activity}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def record_run(ctx: dtctl.ActivityContext, activity: str) -> int:
    """Count this run; raise while the activity's fail switch is on."""
    directory = _dir()
    with (directory / f"{ctx.orchestration_id}.{activity}.runs").open("a") as out:
        out.write("run\n")
    count = runs(directory, ctx.orchestration_id, activity)
    if (directory / f"fail.{activity}").exists() or (
        directory / f"fail.{ctx.orchestration_id}.{activity}"
    ).exists():
        raise RuntimeError(f"{activity} failed on run {count}")
    return count


@app.activity
def step(ctx: dtctl.ActivityContext, name: str) -> str:
    record_run(ctx, name)
    return f"{name}:ok"


@app.orchestrator
def three_steps(ctx: dtctl.OrchestrationContext, _: None):
    results = []
    for name in ("one", "two", "three"):
        results.append((yield ctx.call_activity(step, input=name)))
    return results


@app.orchestrator
def child(ctx: dtctl.OrchestrationContext, name: str):
    return (yield ctx.call_activity(step, input=name))


@app.orchestrator
def parent(ctx: dtctl.OrchestrationContext, _: None):
    first = yield ctx.call_activity(step, input="before")
    result = yield ctx.call_sub_orchestrator(child, input="inner")
    return f"{first}|parent:{result}"


@app.orchestrator
def tree(ctx: dtctl.OrchestrationContext, _: None):
    """Two children, then the parent completes: for recursive purge."""
    results = yield dtctl.when_all([ctx.call_sub_orchestrator(child, input=n) for n in ("left", "right")])
    return results


@app.orchestrator
def echo(ctx: dtctl.OrchestrationContext, value: object):
    yield ctx.call_activity(step, input="echo")
    return value
