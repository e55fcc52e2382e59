"""The app of the observability tests: known work whose counts and spans the tests predict.

``hello`` calls ``greet`` three times; ``flaky_once`` calls ``flaky``, which fails on its first attempt
(the retry policy runs it again: two executions, one failed); ``boom`` fails the instance; ``family``
starts ``hello`` as a sub-orchestration and waits on a timer; ``gated`` waits for a gate file (a test
holds it in flight to kill its worker); ``waiter`` waits for the events ``first`` and ``second``.

``orchestrations_only`` and ``activities_only`` split the same code in two: a worker of each shares
the work of one workflow across two processes (a worker leases only the names it registers).
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import dtctl
from dtctl import entities

app = dtctl.App()
orchestrations_only = dtctl.App()
activities_only = dtctl.App()
RETRY = dtctl.RetryPolicy(first_retry_interval=timedelta(milliseconds=10), max_number_of_attempts=3)


@activities_only.activity
@app.activity
def greet(ctx: dtctl.ActivityContext, city: str) -> str:
    return f"Hello {city}!"


@activities_only.activity
@app.activity
def flaky(ctx: dtctl.ActivityContext, _: None) -> str:
    if ctx.task_id == 0:  # the first attempt; its retry is a new task id
        raise RuntimeError("first attempt fails")
    return "ok"


@activities_only.activity
@app.activity
def explode(ctx: dtctl.ActivityContext, _: None) -> None:
    raise ValueError("always fails")


@activities_only.activity
@app.activity
def wait_for_gate(ctx: dtctl.ActivityContext, gate: str) -> str:
    path = Path(gate)
    while not path.exists():  # an external condition, polled as a real activity would
        time.sleep(0.01)
    return "passed"


@orchestrations_only.orchestrator
@app.orchestrator
def hello(ctx: dtctl.OrchestrationContext, _: None):
    results = []
    for city in ("Tokyo", "Seattle", "London"):
        results.append((yield ctx.call_activity(greet, input=city)))
    return results


@orchestrations_only.orchestrator
@app.orchestrator
def flaky_once(ctx: dtctl.OrchestrationContext, _: None):
    return (yield ctx.call_activity(flaky, retry_policy=RETRY))


@orchestrations_only.orchestrator
@app.orchestrator
def boom(ctx: dtctl.OrchestrationContext, _: None):
    return (yield ctx.call_activity(explode))


@orchestrations_only.orchestrator
@app.orchestrator
def family(ctx: dtctl.OrchestrationContext, _: None):
    yield ctx.create_timer(timedelta(milliseconds=20))
    return (yield ctx.call_sub_orchestrator(hello))


@orchestrations_only.orchestrator
@app.orchestrator
def gated(ctx: dtctl.OrchestrationContext, gate: str):
    passed = yield ctx.call_activity(wait_for_gate, input=gate)
    after = yield ctx.call_activity(greet, input="after")
    return [passed, after]


@app.entity
def tally(ctx: entities.EntityContext, amount: int | None = None) -> int:
    """Operations: ``add`` (returns the new total) and ``fail`` (always raises)."""
    if ctx.operation == "fail":
        raise ValueError("tally refuses")
    total = ctx.get_state(int, 0) + (amount or 1)
    ctx.set_state(total)
    return total


@app.orchestrator
def tally_up(ctx: dtctl.OrchestrationContext, key: str):
    """Two calls, one signal and one failing call on ``@tally@KEY``: [the total, whether fail failed]."""
    entity = entities.EntityInstanceId("tally", key)
    yield ctx.call_entity(entity, "add", 1)
    ctx.signal_entity(entity, "add", 10)
    try:
        yield ctx.call_entity(entity, "fail")
        refused = False
    except dtctl.TaskFailedError:
        refused = True
    return [(yield ctx.call_entity(entity, "add", 100)), refused]


@app.orchestrator
def waiter(ctx: dtctl.OrchestrationContext, _: None):
    first = yield ctx.wait_for_external_event("first")
    second = yield ctx.wait_for_external_event("second")
    return [first, second]
