"""An app whose continue-as-new carries events over while more arrive during the ending episode.

``collector`` generation 0 waits for ``start``, then (first run only) holds its episode open until a gate
file exists, so a test can raise events while that episode runs; it then continues as new with
``save_events``. Generation 1 reads three ``x`` events and returns their payloads in delivery order.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dtctl

app = dtctl.App()


@app.orchestrator
def collector(ctx: dtctl.OrchestrationContext, state: dict[str, Any]):
    if state["generation"] == 0:
        yield ctx.wait_for_external_event("start")
        if not ctx.is_replaying:
            Path(state["entered"]).touch()
            gate = Path(state["gate"])
            while not gate.exists():  # an episode held open on purpose (see the module docstring)
                time.sleep(0.01)
        ctx.continue_as_new({"generation": 1}, save_events=True)
        return None
    seen = []
    for _ in range(3):
        seen.append((yield ctx.wait_for_external_event("x")))
    return seen
