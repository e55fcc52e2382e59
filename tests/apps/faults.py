"""Apps for the fault tests: an activity that takes its process down, an orchestrator that never yields.

``slow_chain`` is the innocent workload: three activities of 0.3 s in sequence. ``crasher`` calls
``crash``, which segfaults (``ctypes.string_at(0)``) or exits the process (``os._exit(1)``) as its
input says. ``tally`` is an entity whose ``crash`` operation does the same to its process (called by
``entity_crasher``), and whose ``add`` is the innocent entity workload. ``spinner`` loops forever
without yielding, as a buggy orchestrator would.
"""

from __future__ import annotations

import ctypes
import os
import time

import dtctl
from dtctl import entities

app = dtctl.App()


@app.activity
def slow(ctx: dtctl.ActivityContext, n: int) -> int:
    time.sleep(0.3)  # the work itself (an I/O wait), not synchronisation
    return n + 1


@app.activity
def crash(ctx: dtctl.ActivityContext, how: str) -> str:
    _die(how)
    return "unreachable"


def _die(how: str) -> None:
    if how == "segfault":
        ctypes.string_at(0)
    os._exit(1)


@app.entity
def tally(ctx: entities.EntityContext, input: int | str = 0) -> int:
    if ctx.operation == "crash":
        _die(str(input))
    value = ctx.get_state(int, 0) + int(input)
    ctx.set_state(value)
    return value


@app.orchestrator
def entity_crasher(ctx: dtctl.OrchestrationContext, how: str):
    """Calls the operation that kills its process: the poison failure comes back as the output."""
    try:
        yield ctx.call_entity(entities.EntityInstanceId("tally", "culprit"), "crash", how)
    except dtctl.TaskFailedError as error:
        return error.details.message
    return "no failure"


@app.orchestrator
def slow_chain(ctx: dtctl.OrchestrationContext, n: int):
    for _ in range(3):
        n = yield ctx.call_activity(slow, input=n)
    return n


@app.orchestrator
def crasher(ctx: dtctl.OrchestrationContext, how: str):
    return (yield ctx.call_activity(crash, input=how))


@app.orchestrator
def spinner(ctx: dtctl.OrchestrationContext, _input: None):
    while True:
        pass
    yield  # a generator that never gets here


@app.orchestrator
def hog(ctx: dtctl.OrchestrationContext, _input: None):
    # Native code holding the GIL: no thread of the worker can run, only the supervisor can stop it.
    ctypes.PyDLL(None).sleep(3600)
    yield  # never reached
