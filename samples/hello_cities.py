"""Function chaining: three activities called one after another.

Run it (from the repository root)::

    dtctl init
    dtctl start-instance hello_cities --id demo
    dtctl worker samples/hello_cities.py:app --burst
    dtctl status demo              # COMPLETED, output ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    dtctl history show demo
"""

import dtctl

app = dtctl.App()


@app.activity
def say_hello(ctx: dtctl.ActivityContext, city: str) -> str:
    return f"Hello {city}!"


@app.orchestrator
def hello_cities(ctx: dtctl.OrchestrationContext, _: object):
    results = []
    for city in ["Tokyo", "Seattle", "London"]:
        results.append((yield ctx.call_activity(say_hello, input=city)))
    return results
