"""Human interaction: wait for an approval event, raced against a timeout timer with when_any.

Run it::

    dtctl start-instance approval_workflow --id req-1 \\
        --input '{"request": "new laptop", "timeout_seconds": 3600}'
    dtctl worker samples/human_interaction.py:app &
    dtctl raise-event req-1 approval --data '{"approved": true, "by": "kim"}'
    dtctl wait req-1               # output "approved by kim: new laptop"

Without the event the instance completes with "timed out: new laptop" once the timer fires.
"""

from datetime import timedelta

import dtctl

app = dtctl.App()


@app.activity
def notify_approver(ctx: dtctl.ActivityContext, request: str) -> str:
    return f"approval requested for {request}"


@app.orchestrator
def approval_workflow(ctx: dtctl.OrchestrationContext, request: dict):
    yield ctx.call_activity(notify_approver, input=request["request"])
    ctx.set_custom_status("waiting for approval")
    approval = ctx.wait_for_external_event("approval")
    timeout = ctx.create_timer(timedelta(seconds=request.get("timeout_seconds", 3600)))
    winner = yield dtctl.when_any([approval, timeout])
    if winner == timeout:
        ctx.set_custom_status("timed out")
        return f"timed out: {request['request']}"
    decision = approval.get_result()
    verdict = "approved" if decision.get("approved") else "rejected"
    ctx.set_custom_status(verdict)
    return f"{verdict} by {decision.get('by', 'someone')}: {request['request']}"
