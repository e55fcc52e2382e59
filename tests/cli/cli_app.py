"""A small app for the CLI tests: one orchestrator per outcome the CLI reports."""

from __future__ import annotations

from datetime import timedelta

import dtctl

app = dtctl.App()


@app.activity
def echo(ctx: dtctl.ActivityContext, value: object) -> object:
    return value


@app.activity
def explode(ctx: dtctl.ActivityContext, message: str) -> None:
    raise RuntimeError(message)


@app.orchestrator
def ok(ctx: dtctl.OrchestrationContext, value: object):
    result = yield ctx.call_activity(echo, input=value)
    return result


@app.orchestrator
def fails(ctx: dtctl.OrchestrationContext, message: str):
    yield ctx.call_activity(explode, input=message)


@app.orchestrator
def gate(ctx: dtctl.OrchestrationContext, _: object):
    value = yield ctx.wait_for_external_event("go")
    return value


@app.orchestrator
def sleeper(ctx: dtctl.OrchestrationContext, seconds: float):
    yield ctx.create_timer(timedelta(seconds=seconds))
    return "woke"


@app.orchestrator
def parent(ctx: dtctl.OrchestrationContext, _: object):
    result = yield ctx.call_sub_orchestrator(gate, instance_id=f"{ctx.instance_id}:child")
    return result
