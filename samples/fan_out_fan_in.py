"""Fan-out/fan-in: run many activities in parallel, then aggregate their results.

Run it::

    dtctl start-instance fan_out_fan_in --input 20 --id fan
    dtctl worker samples/fan_out_fan_in.py:app --concurrency 2 --burst
    dtctl status fan               # output {"items": 20, "total": 2870}
"""

import dtctl

app = dtctl.App()


@app.activity
def list_work(ctx: dtctl.ActivityContext, count: int) -> list[int]:
    return list(range(count))


@app.activity
def square(ctx: dtctl.ActivityContext, n: int) -> int:
    return n * n


@app.orchestrator
def fan_out_fan_in(ctx: dtctl.OrchestrationContext, count: int):
    items = yield ctx.call_activity(list_work, input=count or 10)
    results = yield dtctl.when_all([ctx.call_activity(square, input=n) for n in items])
    return {"items": len(results), "total": sum(results)}
