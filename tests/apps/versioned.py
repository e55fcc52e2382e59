"""Apps for the versioning tests, run by real worker processes.

``versioned_chain`` is the pattern of samples/versioning.py: old instances (version 1.x) keep the old
path, new ones (2.x and up) take the new one; each ``step`` appends a line to ``$DTCTL_TEST_RUNS`` so
the crash test can tell at-least-once bodies from exactly-once history.

The SDK's ``version_aware_orchestrator`` example and the orchestrators of its
``test_orchestration_versioning_e2e.py`` follow, ported with only the ``task`` import changed; the
example's worker settings are the app's (``sdk_app.use_versioning``), as the example sets them on its
worker.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import dtctl
from dtctl import task

app = dtctl.App()


def _record_run(label: str) -> None:
    runs = os.environ.get("DTCTL_TEST_RUNS")
    if runs:
        with open(runs, "a", encoding="utf-8") as handle:
            handle.write(f"{label}\n")


@app.activity
def step(ctx: dtctl.ActivityContext, label: str) -> str:
    _record_run(f"{ctx.orchestration_id}:{ctx.task_id}")
    return label


@app.orchestrator
def versioned_chain(ctx: dtctl.OrchestrationContext, n: int) -> Generator[Any, Any, dict[str, Any]]:
    path = "old" if (ctx.version or "1").startswith("1") else "new"
    done = []
    for i in range(n):
        done.append((yield ctx.call_activity(step, input=f"{path}-{i}", tags={"path": path})))
    return {"version": ctx.version, "path": path, "steps": done}


@app.orchestrator
def child(ctx: dtctl.OrchestrationContext, _: Any) -> str | None:
    return ctx.version


@app.orchestrator
def parent(ctx: dtctl.OrchestrationContext, _: Any) -> Generator[Any, Any, list[Any]]:
    pinned = yield ctx.call_sub_orchestrator(child, version="1.5")
    inherited = yield ctx.call_sub_orchestrator(child)  # the worker's default version, if any
    return [ctx.version, pinned, inherited]


@app.orchestrator
def upgrading(ctx: dtctl.OrchestrationContext, rounds: int) -> Any:
    if rounds > 0:
        ctx.continue_as_new(rounds - 1, new_version="2.0" if rounds == 1 else None)
        return None
    return ctx.version


# --- the durabletask SDK's examples/version_aware_orchestrator.py (only the task import changed) ---


def activity_v1(ctx: task.ActivityContext, input: str) -> str:
    """Activity function that returns a result for a given work item"""
    print("processing input:", input)
    return "Success from activity v1"


def activity_v2(ctx: task.ActivityContext, input: str) -> str:
    """Activity function that returns a result for a given work item"""
    print("processing input:", input)
    return "Success from activity v2"


def orchestrator(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, dict[str, Any]]:
    """Orchestrator function that checks the orchestration version and has version-aware behavior"""
    if ctx.version == "1.0.0":
        # For version 1.0.0, we use the original logic
        result = yield ctx.call_activity(activity_v1, input="input for v1")
    elif ctx.version == "2.0.0":
        # For version 2.0.0, we use the updated logic
        result = yield ctx.call_activity(activity_v2, input="input for v2")
    else:
        raise ValueError(f"Unsupported version: {ctx.version}")
    return {
        "result": result,
    }


# --- the orchestrators of the SDK's tests/durabletask/test_orchestration_versioning_e2e.py ----------


def return_version(ctx: task.OrchestrationContext, _: None) -> str | None:
    return ctx.version


def simple(ctx: task.OrchestrationContext, _: None) -> str:
    return "done"


sdk_app = dtctl.App()
# The example's worker: versioned 2.0.0, runs 2.0.0 and older, fails newer instances.
sdk_app.use_versioning(
    dtctl.VersioningOptions(
        version="2.0.0",
        default_version="2.0.0",
        match_strategy=dtctl.VersionMatchStrategy.CURRENT_OR_OLDER,
        failure_strategy=dtctl.VersionFailureStrategy.FAIL,
    )
)
for _fn in (orchestrator, return_version, simple):
    sdk_app.add_orchestrator(_fn)
for _fn in (activity_v1, activity_v2):
    sdk_app.add_activity(_fn)
