"""Versioning: change an orchestrator's code safely while instances of the old code are in flight.

Version 1.0 of ``process_order`` charged the card, then shipped. Version 2.0 reserves stock first.
Replaying a 1.0 instance that is waiting for its charge through the 2.0 code would schedule
``reserve_stock`` where history recorded ``charge_card``: a non-determinism error. So the new code
keeps the old path for the instances that started on it, and takes the new path for the new ones,
deciding on ``ctx.version`` (set when the instance starts, recorded in its history, the same on every
replay). Once no 1.0 instance is left (``dtctl list --version 1.0``), the old branch can go.

Run it::

    dtctl start-instance process_order --input '"o-1"' --id old --version 1.0
    dtctl start-instance process_order --input '"o-2"' --id new --version 2.0
    dtctl worker samples/versioning.py:app --version 2.0 --version-match current-or-older --burst
    dtctl status old               # ["charged o-1", "shipped o-1"]
    dtctl status new               # ["reserved o-2", "charged o-2", "shipped o-2"]

During a rolling deploy, the old workers run ``--version 1.0 --version-match strict`` and the new ones
``--version 2.0 --version-match current-or-older``: an old worker never leases a 2.0 instance (it
stays PENDING for a new worker, and ``dtctl status`` says so), a new worker runs both.
"""

from collections.abc import Generator
from typing import Any

import dtctl
from dtctl.core.versioning import compare_versions

app = dtctl.App()


@app.activity
def reserve_stock(ctx: dtctl.ActivityContext, order: str) -> str:
    return f"reserved {order}"


@app.activity
def charge_card(ctx: dtctl.ActivityContext, order: str) -> str:
    return f"charged {order}"


@app.activity
def ship(ctx: dtctl.ActivityContext, order: str) -> str:
    return f"shipped {order}"


@app.orchestrator
def process_order(ctx: dtctl.OrchestrationContext, order: str) -> Generator[Any, Any, list[str]]:
    done: list[str] = []
    if compare_versions(ctx.version, "2.0") >= 0:
        # New in 2.0: only instances started at 2.0 or later take this step.
        done.append((yield ctx.call_activity(reserve_stock, input=order, tags={"step": "reserve"})))
    done.append((yield ctx.call_activity(charge_card, input=order)))
    done.append((yield ctx.call_activity(ship, input=order)))
    return done
