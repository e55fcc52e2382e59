"""The entity benchmark's app: one function entity (a separate app, so the orchestration benchmarks'
workers do not lease entities)."""

from __future__ import annotations

from typing import Any

import dtctl
from dtctl import entities

app = dtctl.App()


@app.entity
def tally(ctx: entities.EntityContext, input: Any = None) -> int:
    value = ctx.get_state(int, 0) + int(input)
    ctx.set_state(value)
    return value
