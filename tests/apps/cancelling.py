"""An app for the cancellation tests: wait for an approval or a one-hour timeout, drop the loser."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import dtctl
from dtctl import task

app = dtctl.App()


@app.orchestrator
def approval_or_timeout(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, str]:
    approval = ctx.wait_for_external_event("approval")
    timeout = ctx.create_timer(timedelta(hours=1))
    winner = yield task.when_any([approval, timeout])
    if winner is not approval:
        return "timed out"
    timeout.cancel()
    finish = yield ctx.wait_for_external_event("finish")
    return f"approved, then {finish}"
