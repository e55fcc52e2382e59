"""Durable entities: an aggregator fed by many signals, from clients and from an orchestration.

Each ``record`` signal adds one reading; the entity keeps count, sum, minimum and maximum. Signals are
one-way: the senders never wait, and the entity applies the readings in batches, one at a time each.

Run it::

    dtctl start-instance feed_readings --input 100 --id feed
    dtctl worker samples/entities_aggregator.py:app --concurrency 2 --burst
    dtctl entity show @aggregator@sensor-1          # {"count": 100, "sum": 4950, "min": 0, "max": 99}
"""

from __future__ import annotations

from typing import Any

import dtctl
from dtctl import entities

app = dtctl.App()


@app.entity
def aggregator(ctx: entities.EntityContext, input: Any = None) -> Any:
    """Operations: record (a number), get, reset."""
    stats = ctx.get_state(dict, None) or {"count": 0, "sum": 0, "min": None, "max": None}
    if ctx.operation == "record":
        value = input
        stats["count"] += 1
        stats["sum"] += value
        stats["min"] = value if stats["min"] is None else min(stats["min"], value)
        stats["max"] = value if stats["max"] is None else max(stats["max"], value)
        ctx.set_state(stats)
        return None
    if ctx.operation == "get":
        return stats
    if ctx.operation == "reset":
        ctx.delete_state()
        return None
    raise ValueError(f"aggregator has no operation {ctx.operation!r}")


@app.orchestrator
def feed_readings(ctx: dtctl.OrchestrationContext, count: int):
    """Signals ``count`` readings 0 … count-1 to @aggregator@sensor-1, then reads the totals."""
    sensor = entities.EntityInstanceId("aggregator", "sensor-1")
    for value in range(count or 10):
        ctx.signal_entity(sensor, "record", value)
    return (yield ctx.call_entity(sensor, "get"))
