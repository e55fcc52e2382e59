"""The durabletask SDK's rewind end-to-end scenarios (tests/durabletask/test_rewind_e2e.py), ported.

The orchestrator bodies are the SDK's with ``from dtctl import task``. The SDK's activities count their
calls in module globals of the test process, where its worker runs; dtctl's workers are processes, so
the counts live in files (tests/apps/repair.py) and "should fail" is a switch file the test turns off.
"""

from __future__ import annotations

import dtctl
from dtctl import task
from tests.apps.repair import record_run

app = dtctl.App()


@app.activity
def failing_activity(ctx: task.ActivityContext, input: str) -> str:
    record_run(ctx, "failing_activity")  # raises while fail.failing_activity exists (the SDK's _should_fail)
    return f"Hello, {input}!"


@app.orchestrator
def orchestrator(ctx: task.OrchestrationContext, input: str):
    result = yield ctx.call_activity(failing_activity, input=input)
    return result


@app.activity
def first_activity(ctx: task.ActivityContext, input: str) -> str:
    record_run(ctx, "first_activity")
    return f"first:{input}"


@app.activity
def second_activity(ctx: task.ActivityContext, input: str) -> str:
    record_run(ctx, "second_activity")  # raises while should_fail_second (the switch file) is on
    return f"second:{input}"


@app.orchestrator
def two_step_orchestrator(ctx: task.OrchestrationContext, input: str):
    r1 = yield ctx.call_activity(first_activity, input=input)
    r2 = yield ctx.call_activity(second_activity, input=input)
    return [r1, r2]


@app.orchestrator
def done_orchestrator(ctx: task.OrchestrationContext, _):
    return "done"


@app.activity
def child_activity(ctx: task.ActivityContext, input: str) -> str:
    count = record_run(ctx, "child_activity_seen")
    if count == 1:
        raise RuntimeError("Child failure")
    return f"child:{input}"


@app.orchestrator
def child_orchestrator(ctx: task.OrchestrationContext, input: str):
    result = yield ctx.call_activity(child_activity, input=input)
    return result


@app.orchestrator
def parent_orchestrator(ctx: task.OrchestrationContext, input: str):
    result = yield ctx.call_sub_orchestrator(child_orchestrator, input=input)
    return f"parent:{result}"


@app.orchestrator
def purging_parent_orchestrator(ctx: task.OrchestrationContext, input: str):
    result = yield ctx.call_sub_orchestrator(child_orchestrator, input=input, instance_id="sub-orch-to-purge")
    return f"parent:{result}"


@app.activity
def flaky_activity(ctx: task.ActivityContext, _1) -> str:
    count = record_run(ctx, "flaky_activity")
    if count == 1:
        raise RuntimeError("Boom")
    return "ok"


@app.orchestrator
def flaky_orchestrator(ctx: task.OrchestrationContext, _):
    result = yield ctx.call_activity(flaky_activity)
    return result


@app.activity
def twice_flaky_activity(ctx: task.ActivityContext, input: str) -> str:
    call_count = record_run(ctx, "twice_flaky_activity")
    # Fail on the 1st and 2nd calls; succeed on the 3rd.
    if call_count <= 2:
        raise RuntimeError(f"Failure #{call_count}")
    return f"Hello, {input}!"


@app.orchestrator
def twice_orchestrator(ctx: task.OrchestrationContext, input: str):
    result = yield ctx.call_activity(twice_flaky_activity, input=input)
    return result
