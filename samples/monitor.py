"""Monitor: an eternal orchestration that polls, sleeps on a durable timer and continues as new.

Each round is a fresh execution (continue_as_new), so history never grows however long it runs.

Run it::

    dtctl start-instance monitor --input '{"checks": 0, "max_checks": 3, "interval_seconds": 1}' --id mon
    dtctl worker samples/monitor.py:app
    dtctl status mon               # COMPLETED after 3 rounds: output {"checks": 3, "healthy": 3}
"""

from datetime import timedelta

import dtctl

app = dtctl.App()


@app.activity
def check_health(ctx: dtctl.ActivityContext, round_number: int) -> bool:
    return True


@app.orchestrator
def monitor(ctx: dtctl.OrchestrationContext, state: dict):
    healthy = yield ctx.call_activity(check_health, input=state["checks"])
    state = {**state, "checks": state["checks"] + 1, "healthy": state.get("healthy", 0) + int(healthy)}
    ctx.set_custom_status({"checks": state["checks"]})
    if state["checks"] >= state["max_checks"]:
        return {"checks": state["checks"], "healthy": state["healthy"]}
    yield ctx.create_timer(timedelta(seconds=state["interval_seconds"]))
    ctx.continue_as_new(state)
