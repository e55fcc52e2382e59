"""Durable entities: a counter written as a function entity, called and signalled by an orchestration.

Run it::

    dtctl entity signal @counter@c1 add --data 5          # a one-way operation from the CLI
    dtctl start-instance count_to --input 3 --id count
    dtctl worker samples/entities_counter.py:app --concurrency 2 --burst
    dtctl status count                                  # output 8 (5, then three calls of add 1)
    dtctl entity show @counter@c1                       # state 8, nothing waiting
"""

from __future__ import annotations

from typing import Any

import dtctl
from dtctl import entities

app = dtctl.App()


@app.entity
def counter(ctx: entities.EntityContext, input: Any = None) -> int | None:
    """Operations: add (default 1), reset, get, delete."""
    if ctx.operation == "add":
        value = ctx.get_state(int, 0) + (1 if input is None else int(input))
        ctx.set_state(value)
        return value
    if ctx.operation == "reset":
        ctx.set_state(0)
        return 0
    if ctx.operation == "get":
        return ctx.get_state(int, 0)
    if ctx.operation == "delete":
        ctx.delete_state()
        return None
    raise ValueError(f"counter has no operation {ctx.operation!r}")


@app.orchestrator
def count_to(ctx: dtctl.OrchestrationContext, times: int):
    """Calls ``add`` on @counter@c1 ``times`` times (each waits for its result), returns the value."""
    counter_id = entities.EntityInstanceId("counter", "c1")
    value = None
    for _ in range(times or 1):
        value = yield ctx.call_entity(counter_id, "add", 1)
    return value
