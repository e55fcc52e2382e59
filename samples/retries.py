"""Retries: a flaky activity retried with a RetryPolicy (durable timers between attempts).

The activity fails its first two attempts for each key; the third succeeds. Attempts are counted in a
small file next to the hub, because an activity may run on any worker process.

Run it::

    dtctl start-instance flaky_workflow --input '"order-7"' --id flaky
    dtctl worker samples/retries.py:app --burst
    dtctl status flaky             # output "charged order-7 on attempt 3"
"""

import os
from datetime import timedelta
from pathlib import Path

import dtctl

app = dtctl.App()

ATTEMPTS_DIR = Path(os.environ.get("DTCTL_SAMPLE_STATE", ".dtctl-sample-state"))


def _next_attempt(key: str) -> int:
    ATTEMPTS_DIR.mkdir(parents=True, exist_ok=True)
    marker = ATTEMPTS_DIR / f"attempts-{key}"
    count = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(count))
    return count


@app.activity
def charge(ctx: dtctl.ActivityContext, key: str) -> str:
    attempt = _next_attempt(key)
    if attempt < 3:
        raise ConnectionError(f"payment service unavailable (attempt {attempt})")
    return f"charged {key} on attempt {attempt}"


@app.orchestrator
def flaky_workflow(ctx: dtctl.OrchestrationContext, key: str):
    policy = dtctl.RetryPolicy(
        first_retry_interval=timedelta(milliseconds=200),
        max_number_of_attempts=5,
        backoff_coefficient=2.0,
        max_retry_interval=timedelta(seconds=5),
    )
    return (yield ctx.call_activity(charge, input=key, retry_policy=policy))
