"""dtctl.testing.run_orchestration: users' own tests run whole orchestrations in-process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import dtctl
from dtctl.core import payload
from dtctl.errors import WaitTimeout
from dtctl.testing import run_orchestration

app = dtctl.App()


@app.activity
def greet(ctx: dtctl.ActivityContext, name: str) -> str:
    return f"hi {name}"


@app.orchestrator
def slow_greeting(ctx: dtctl.OrchestrationContext, name: str) -> Any:
    yield ctx.create_timer(timedelta(days=2))  # skipped: the test hub's clock jumps to the timer
    return (yield ctx.call_activity(greet, input=name))


@app.orchestrator
def approval(ctx: dtctl.OrchestrationContext, _: Any) -> Any:
    answer = yield ctx.wait_for_external_event("approve")
    return answer


def test_runs_to_completion_skipping_a_two_day_timer() -> None:
    state = run_orchestration(app, slow_greeting, "ada")
    assert state.status == "COMPLETED"
    assert payload.decode(state.output) == "hi ada"


def test_events_given_up_front_are_delivered() -> None:
    state = run_orchestration(app, approval, events=[("approve", {"ok": True})])
    assert payload.decode(state.output) == {"ok": True}


def test_waiting_for_an_event_nobody_raises_is_reported() -> None:
    with pytest.raises(WaitTimeout, match="external event"):
        run_orchestration(app, approval)
