"""Sub-orchestrations: a parent starts one child orchestration per device and gathers the results.

Run it::

    dtctl start-instance provision_all --input '["dev-a", "dev-b", "dev-c"]' --id fleet
    dtctl worker samples/sub_orchestrations.py:app --burst
    dtctl status fleet             # output ["dev-a: ready", "dev-b: ready", "dev-c: ready"]
"""

import dtctl

app = dtctl.App()


@app.activity
def configure(ctx: dtctl.ActivityContext, device: str) -> str:
    return f"{device}: ready"


@app.orchestrator
def provision_device(ctx: dtctl.OrchestrationContext, device: str):
    return (yield ctx.call_activity(configure, input=device))


@app.orchestrator
def provision_all(ctx: dtctl.OrchestrationContext, devices: list[str]):
    children = [ctx.call_sub_orchestrator(provision_device, input=d) for d in devices]
    return (yield dtctl.when_all(children))
